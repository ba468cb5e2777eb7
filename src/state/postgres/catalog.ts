/** Postgres tenants, keys and ledger (distributed family). Multi-statement changes run in transactions. */
import { StateConflictError, StateNotFoundError, apiTenantsTaken } from '../errors.js';
import {
  checkId,
  checkKeyInput,
  checkLedgerFilter,
  checkLedgerRecords,
  checkTenantInput,
} from '../validate-input.js';
import { roundCost, toKeyInfo } from '../memory/catalog.js';
import type {
  ApiKeyInfo,
  ApiKeyRecord,
  Clock,
  ConfigSyncResult,
  CreatedApiKey,
  KeyStore,
  LedgerFilter,
  LedgerGroupBy,
  LedgerRecord,
  LedgerRow,
  LedgerStore,
  NewApiKey,
  NewTenant,
  TenantPatch,
  TenantRecord,
  TenantStore,
} from '../ports.js';
import { patchedTenant } from '../ports.js';
import {
  keyFromRow,
  LEDGER_COLUMNS,
  ledgerParams,
  TENANT_COLUMNS,
  tenantFromRow,
  tenantParams,
  type KeyRow,
  type TenantRow,
} from '../sql-rows.js';
import { keyMaterial, normalizeTime, isoNow, newKeyId } from '../util.js';
import { PG_REPORT_TIMEOUT_MS, pgRun, timed, withTx, type PgContext } from './db.js';

const ISO = (col: string): string => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const TENANT_SELECT = `id, display_name, company, industry, system_prompt, prompt_policy::text AS prompt_policy,
  allowed_models::text AS allowed_models, limits::text AS limits, priority, source, ${ISO('created_at')} AS created_at`;
const KEY_SELECT = `id, tenant_id, label, hash, prefix, ${ISO('expires_at')} AS expires_at, ${ISO('revoked_at')} AS revoked_at,
  limits::text AS limits, ${ISO('created_at')} AS created_at`;

const TENANT_PLACEHOLDERS = TENANT_COLUMNS.map((c, i) =>
  ['prompt_policy', 'allowed_models', 'limits'].includes(c) ? `$${i + 1}::jsonb` : `$${i + 1}`,
).join(',');

function pgCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

export class PgTenantStore implements TenantStore {
  readonly #ctx: PgContext;
  readonly #clock: Clock;

  constructor(ctx: PgContext, opts: { clock?: Clock } = {}) {
    this.#ctx = ctx;
    this.#clock = opts.clock ?? Date.now;
  }

  async create(t: NewTenant): Promise<TenantRecord> {
    checkTenantInput(t);
    try {
      const r = await pgRun(this.#ctx, 'tenants', 'create', () =>
        this.#ctx.pool.query<TenantRow>(
          `INSERT INTO ${this.#ctx.s}.tenants (${TENANT_COLUMNS.join(',')}) VALUES (${TENANT_PLACEHOLDERS}) RETURNING ${TENANT_SELECT}`,
          tenantParams(t, t.source ?? 'api', isoNow(this.#clock())),
        ),
      );
      const row = r.rows[0];
      if (!row) throw new Error('insert returned no row');
      return tenantFromRow(row);
    } catch (e) {
      if (pgCode(e) === '23505') throw new StateConflictError(`tenant ${t.id} already exists`);
      throw e;
    }
  }

  async get(id: string): Promise<TenantRecord | null> {
    checkId('id', id);
    // Not counted here: the tenant cache counts its failed lookups (admin reads go uncounted).
    const r = await pgRun(
      this.#ctx,
      'tenants',
      'get',
      () =>
        this.#ctx.pool.query<TenantRow>(`SELECT ${TENANT_SELECT} FROM ${this.#ctx.s}.tenants WHERE id = $1`, [
          id,
        ]),
      false,
    );
    const row = r.rows[0];
    return row ? tenantFromRow(row) : null;
  }

  async list(): Promise<TenantRecord[]> {
    const r = await pgRun(this.#ctx, 'tenants', 'list', () =>
      this.#ctx.pool.query<TenantRow>(
        `SELECT ${TENANT_SELECT} FROM ${this.#ctx.s}.tenants ORDER BY id COLLATE "C"`,
      ),
    );
    return r.rows.map(tenantFromRow);
  }

  async update(id: string, patch: TenantPatch): Promise<TenantRecord | null> {
    checkTenantInput(patch, id);
    return pgRun(this.#ctx, 'tenants', 'update', () => this.#update(id, patch));
  }

  #update(id: string, patch: TenantPatch): Promise<TenantRecord | null> {
    return withTx(this.#ctx, async (c) => {
      const r = await c.query<TenantRow>(
        `SELECT ${TENANT_SELECT} FROM ${this.#ctx.s}.tenants WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const row = r.rows[0];
      if (!row) return null;
      const next = patchedTenant(tenantFromRow(row), patch);
      const p = tenantParams(next, next.source, next.created_at);
      const u = await c.query<TenantRow>(
        `UPDATE ${this.#ctx.s}.tenants SET display_name=$2, company=$3, industry=$4, system_prompt=$5, prompt_policy=$6::jsonb,
           allowed_models=$7::jsonb, limits=$8::jsonb, priority=$9 WHERE id=$1 RETURNING ${TENANT_SELECT}`,
        p.slice(0, 9),
      );
      const out = u.rows[0];
      return out ? tenantFromRow(out) : null;
    });
  }

  async delete(id: string): Promise<boolean> {
    checkId('id', id);
    // api_keys cascade.
    const r = await pgRun(this.#ctx, 'tenants', 'delete', () =>
      this.#ctx.pool.query(`DELETE FROM ${this.#ctx.s}.tenants WHERE id = $1`, [id]),
    );
    return (r.rowCount ?? 0) > 0;
  }

  async syncFromConfig(tenants: NewTenant[], opts: { prune?: boolean } = {}): Promise<ConfigSyncResult> {
    tenants.forEach((t) => checkTenantInput(t));
    const now = isoNow(this.#clock());
    return pgRun(this.#ctx, 'tenants', 'syncFromConfig', () => this.#sync(tenants, now, opts));
  }

  #sync(tenants: NewTenant[], now: string, opts: { prune?: boolean }): Promise<ConfigSyncResult> {
    const ids = tenants.map((t) => t.id);
    return withTx(this.#ctx, async (c) => {
      const out: ConfigSyncResult = { removed: [], retained: [] };
      // FOR UPDATE: an API tenant created with one of these ids while this runs waits, then is seen.
      const taken = await c.query<{ id: string }>(
        `SELECT id FROM ${this.#ctx.s}.tenants WHERE source = 'api' AND id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
        [ids],
      );
      if (taken.rows.length > 0) throw apiTenantsTaken(taken.rows.map((r) => r.id));
      if (opts.prune !== false) {
        // Lock the undeclared config tenants first: a key being created for one (its insert holds a
        // KEY SHARE lock on the tenant row) commits before this goes on, and none can be created
        // after. The DELETE below is a new statement, so it sees such a key: a tenant with API keys
        // is kept, never deleted with them (TenantStore.syncFromConfig).
        const stale = await c.query<{ id: string }>(
          `SELECT id FROM ${this.#ctx.s}.tenants WHERE source = 'config' AND NOT (id = ANY($1::text[])) ORDER BY id FOR UPDATE`,
          [ids],
        );
        if (stale.rows.length > 0) {
          const gone = await c.query<{ id: string }>(
            `DELETE FROM ${this.#ctx.s}.tenants t WHERE t.id = ANY($1::text[])
               AND NOT EXISTS (SELECT 1 FROM ${this.#ctx.s}.api_keys k WHERE k.tenant_id = t.id) RETURNING t.id`,
            [stale.rows.map((r) => r.id)],
          );
          const removed = new Set(gone.rows.map((r) => r.id));
          for (const { id } of stale.rows) (removed.has(id) ? out.removed : out.retained).push(id);
        }
      }
      for (const t of tenants) {
        await c.query(
          `INSERT INTO ${this.#ctx.s}.tenants (${TENANT_COLUMNS.join(',')}) VALUES (${TENANT_PLACEHOLDERS})
           ON CONFLICT (id) DO UPDATE SET display_name=excluded.display_name, company=excluded.company,
             industry=excluded.industry, system_prompt=excluded.system_prompt, prompt_policy=excluded.prompt_policy,
             allowed_models=excluded.allowed_models, limits=excluded.limits, priority=excluded.priority, source='config'`,
          tenantParams(t, 'config', now),
        );
      }
      return out;
    });
  }
}

export class PgKeyStore implements KeyStore {
  readonly #ctx: PgContext;
  readonly #clock: Clock;

  constructor(ctx: PgContext, opts: { clock?: Clock } = {}) {
    this.#ctx = ctx;
    this.#clock = opts.clock ?? Date.now;
  }

  async create(k: NewApiKey): Promise<CreatedApiKey> {
    checkKeyInput(k);
    const g = keyMaterial(k.plaintext);
    try {
      const params = [
        k.id ?? newKeyId(),
        k.tenant_id,
        k.label ?? '',
        g.hash,
        g.prefix,
        normalizeTime(k.expires_at),
        k.limits ? JSON.stringify(k.limits) : null,
        isoNow(this.#clock()),
      ];
      const r = await pgRun(this.#ctx, 'keys', 'create', () =>
        this.#ctx.pool.query<KeyRow>(
          `INSERT INTO ${this.#ctx.s}.api_keys (id, tenant_id, label, hash, prefix, expires_at, revoked_at, limits, created_at)
           VALUES ($1,$2,$3,$4,$5,$6,NULL,$7::jsonb,$8) RETURNING ${KEY_SELECT}`,
          params,
        ),
      );
      const row = r.rows[0];
      if (!row) throw new Error('insert returned no row');
      return { plaintext: g.plaintext, key: toKeyInfo(keyFromRow(row)) };
    } catch (e) {
      if (pgCode(e) === '23503') throw new StateNotFoundError(`tenant ${k.tenant_id} does not exist`);
      if (pgCode(e) === '23505') throw new StateConflictError('key id or secret already exists');
      throw e;
    }
  }

  async get(id: string): Promise<ApiKeyInfo | null> {
    checkId('id', id);
    const r = await pgRun(this.#ctx, 'keys', 'get', () =>
      this.#ctx.pool.query<KeyRow>(`SELECT ${KEY_SELECT} FROM ${this.#ctx.s}.api_keys WHERE id = $1`, [id]),
    );
    const row = r.rows[0];
    return row ? toKeyInfo(keyFromRow(row)) : null;
  }

  async list(tenantId?: string): Promise<ApiKeyInfo[]> {
    if (tenantId !== undefined) checkId('tenant_id', tenantId);
    const r = await pgRun(this.#ctx, 'keys', 'list', () =>
      tenantId === undefined
        ? this.#ctx.pool.query<KeyRow>(
            `SELECT ${KEY_SELECT} FROM ${this.#ctx.s}.api_keys ORDER BY created_at, id COLLATE "C"`,
          )
        : this.#ctx.pool.query<KeyRow>(
            `SELECT ${KEY_SELECT} FROM ${this.#ctx.s}.api_keys WHERE tenant_id = $1 ORDER BY created_at, id COLLATE "C"`,
            [tenantId],
          ),
    );
    return r.rows.map((row) => toKeyInfo(keyFromRow(row)));
  }

  async revoke(id: string): Promise<ApiKeyInfo | null> {
    checkId('id', id);
    // COALESCE keeps the first revocation time; one statement, so concurrent revokes agree.
    const r = await pgRun(this.#ctx, 'keys', 'revoke', () =>
      this.#ctx.pool.query<KeyRow>(
        `UPDATE ${this.#ctx.s}.api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING ${KEY_SELECT}`,
        [id, isoNow(this.#clock())],
      ),
    );
    const row = r.rows[0];
    return row ? toKeyInfo(keyFromRow(row)) : null;
  }

  async lookupByHash(hash: string): Promise<ApiKeyRecord | null> {
    // Not counted here: the key cache counts its failed lookups.
    const r = await pgRun(
      this.#ctx,
      'keys',
      'lookup',
      () =>
        this.#ctx.pool.query<KeyRow>(`SELECT ${KEY_SELECT} FROM ${this.#ctx.s}.api_keys WHERE hash = $1`, [
          hash,
        ]),
      false,
    );
    const row = r.rows[0];
    return row ? keyFromRow(row) : null;
  }
}

const PG_GROUP: Record<LedgerGroupBy, string> = {
  day: `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
  month: `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM')`,
  model: 'model',
  key: `COALESCE(key_id, '')`,
};

/** Rows per INSERT statement (14 parameters each, well under Postgres' 65535). */
const INSERT_CHUNK = 1000;

function whereOf(f: LedgerFilter): { sql: string; params: (string | number)[] } {
  const parts: string[] = [];
  const params: (string | number)[] = [];
  const add = (sql: string, v: string | number): void => {
    params.push(v);
    parts.push(sql.replace('?', `$${params.length}`));
  };
  if (f.tenant !== undefined) add('tenant = ?', f.tenant);
  if (f.from !== undefined) add('time >= to_timestamp(?::bigint / 1000.0)', f.from);
  if (f.to !== undefined) add('time < to_timestamp(?::bigint / 1000.0)', f.to);
  if (f.model !== undefined) add('model = ?', f.model);
  if (f.key_id !== undefined) add('key_id = ?', f.key_id);
  if (f.cache_hit !== undefined) parts.push(f.cache_hit ? 'cache_hit' : 'NOT cache_hit');
  if (f.quota_counted) parts.push('(status < 400 OR tokens_in + tokens_out > 0)');
  return { sql: parts.length ? 'WHERE ' + parts.join(' AND ') : '', params };
}

interface PgAggRow {
  tenant: string;
  grp: string;
  requests: string;
  tokens_in: string;
  tokens_out: string;
  cost_usd: number;
  estimated: string;
  partial: string;
}

export class PgLedgerStore implements LedgerStore {
  readonly #ctx: PgContext;

  constructor(ctx: PgContext) {
    this.#ctx = ctx;
  }

  /** Usage reports aggregate over the ledger: bounded, but not by the lookup's bound. */
  #reportTimeoutMs(): number {
    return Math.max(PG_REPORT_TIMEOUT_MS, this.#ctx.queryTimeoutMs ?? 0);
  }

  async append(records: LedgerRecord[]): Promise<number> {
    checkLedgerRecords(records);
    if (records.length === 0) return 0;
    // Not counted here: the ledger writer counts its failed appends (mode "retry").
    return pgRun(this.#ctx, 'ledger', 'append', () => this.#append(records), false);
  }

  #append(records: LedgerRecord[]): Promise<number> {
    return withTx(this.#ctx, async (c) => {
      let n = 0;
      for (let i = 0; i < records.length; i += INSERT_CHUNK) {
        const chunk = records.slice(i, i + INSERT_CHUNK);
        const params: (string | number | boolean | null)[] = [];
        const tuples = chunk.map((r) => {
          const base = params.length;
          params.push(...ledgerParams(r));
          return `(${LEDGER_COLUMNS.map((col, j) =>
            col === 'time' ? `to_timestamp($${base + j + 1}::bigint / 1000.0)` : `$${base + j + 1}`,
          ).join(',')})`;
        });
        const res = await c.query(
          `INSERT INTO ${this.#ctx.s}.ledger (${LEDGER_COLUMNS.join(',')}) VALUES ${tuples.join(',')} ON CONFLICT (id) DO NOTHING`,
          params,
        );
        n += res.rowCount ?? 0;
      }
      return n;
    });
  }

  async query(filter: LedgerFilter, groupBy: LedgerGroupBy): Promise<LedgerRow[]> {
    checkLedgerFilter(filter);
    const w = whereOf(filter);
    const r = await pgRun(this.#ctx, 'ledger', 'query', () =>
      this.#ctx.pool.query<PgAggRow>(
        timed(
          `SELECT tenant, ${PG_GROUP[groupBy]} AS grp, COUNT(*) AS requests, SUM(tokens_in) AS tokens_in,
              SUM(tokens_out) AS tokens_out, SUM(cost_usd) AS cost_usd, COUNT(*) FILTER (WHERE estimated) AS estimated,
              COUNT(*) FILTER (WHERE partial) AS partial
         FROM ${this.#ctx.s}.ledger ${w.sql}
        GROUP BY 1, 2 ORDER BY tenant COLLATE "C", ${PG_GROUP[groupBy]} COLLATE "C"`,
          w.params,
          this.#reportTimeoutMs(),
        ),
      ),
    );
    return r.rows.map((row) => ({
      tenant: row.tenant,
      group: row.grp,
      requests: Number(row.requests),
      tokens_in: Number(row.tokens_in),
      tokens_out: Number(row.tokens_out),
      cost_usd: roundCost(Number(row.cost_usd)),
      estimated: Number(row.estimated),
      partial: Number(row.partial),
    }));
  }

  async count(filter: LedgerFilter): Promise<number> {
    checkLedgerFilter(filter);
    const w = whereOf(filter);
    const r = await pgRun(this.#ctx, 'ledger', 'count', () =>
      this.#ctx.pool.query<{ n: string }>(
        timed(`SELECT COUNT(*) AS n FROM ${this.#ctx.s}.ledger ${w.sql}`, w.params, this.#reportTimeoutMs()),
      ),
    );
    return Number(r.rows[0]?.n ?? 0);
  }
}
