/** SQLite tenants, keys and ledger (embedded family). better-sqlite3 is synchronous: each method is one transaction. */
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
import type { Statement } from 'better-sqlite3';
import type { SqliteDb } from './db.js';

const TENANT_INSERT = `INSERT INTO tenants (${TENANT_COLUMNS.join(',')}) VALUES (${TENANT_COLUMNS.map(() => '?').join(',')})`;

export class SqliteTenantStore implements TenantStore {
  readonly #db: SqliteDb;
  readonly #clock: Clock;

  constructor(db: SqliteDb, opts: { clock?: Clock } = {}) {
    this.#db = db;
    this.#clock = opts.clock ?? Date.now;
  }

  #get(id: string): TenantRecord | null {
    const row = this.#db.prepare('SELECT * FROM tenants WHERE id = ?').get(id) as TenantRow | undefined;
    return row ? tenantFromRow(row) : null;
  }

  async create(t: NewTenant): Promise<TenantRecord> {
    checkTenantInput(t);
    try {
      this.#db.prepare(TENANT_INSERT).run(...tenantParams(t, t.source ?? 'api', isoNow(this.#clock())));
    } catch (e) {
      if (e instanceof Error && 'code' in e && String(e.code).startsWith('SQLITE_CONSTRAINT')) {
        throw new StateConflictError(`tenant ${t.id} already exists`);
      }
      throw e;
    }
    const rec = this.#get(t.id);
    if (!rec) throw new Error('tenant vanished after insert');
    return rec;
  }

  async get(id: string): Promise<TenantRecord | null> {
    checkId('id', id);
    return this.#get(id);
  }

  async list(): Promise<TenantRecord[]> {
    const rows = this.#db.prepare('SELECT * FROM tenants ORDER BY id').all() as TenantRow[];
    return rows.map(tenantFromRow);
  }

  async update(id: string, patch: TenantPatch): Promise<TenantRecord | null> {
    checkTenantInput(patch, id);
    return this.#db
      .transaction((): TenantRecord | null => {
        const cur = this.#get(id);
        if (!cur) return null;
        const next = patchedTenant(cur, patch);
        this.#db.prepare('DELETE FROM tenants WHERE id = ?').run(id);
        this.#db.prepare(TENANT_INSERT).run(...tenantParams(next, next.source, next.created_at));
        return this.#get(id);
      })
      .immediate();
  }

  async delete(id: string): Promise<boolean> {
    checkId('id', id);
    return this.#db
      .transaction((): boolean => {
        this.#db.prepare('DELETE FROM api_keys WHERE tenant_id = ?').run(id);
        return this.#db.prepare('DELETE FROM tenants WHERE id = ?').run(id).changes > 0;
      })
      .immediate();
  }

  async syncFromConfig(tenants: NewTenant[], opts: { prune?: boolean } = {}): Promise<ConfigSyncResult> {
    tenants.forEach((t) => checkTenantInput(t));
    const now = isoNow(this.#clock());
    return this.#db
      .transaction((): ConfigSyncResult => {
        const out: ConfigSyncResult = { removed: [], retained: [] };
        const ids = new Set(tenants.map((t) => t.id));
        const api = this.#db.prepare("SELECT id FROM tenants WHERE source = 'api'").all() as { id: string }[];
        const taken = api.map((r) => r.id).filter((id) => ids.has(id));
        if (taken.length > 0) throw apiTenantsTaken(taken);
        const stale =
          opts.prune === false
            ? []
            : (this.#db
                .prepare(
                  "SELECT id, EXISTS (SELECT 1 FROM api_keys k WHERE k.tenant_id = t.id) AS has_keys FROM tenants t WHERE source = 'config' ORDER BY id",
                )
                .all() as { id: string; has_keys: number }[]);
        for (const { id, has_keys } of stale) {
          if (ids.has(id)) continue;
          // API keys are never deleted by a sync: the tenant stays (TenantStore.syncFromConfig).
          if (has_keys) {
            out.retained.push(id);
            continue;
          }
          this.#db.prepare('DELETE FROM tenants WHERE id = ?').run(id);
          out.removed.push(id);
        }
        for (const t of tenants) {
          const old = this.#db.prepare('SELECT created_at FROM tenants WHERE id = ?').get(t.id) as
            { created_at: string } | undefined;
          this.#db.prepare('DELETE FROM tenants WHERE id = ?').run(t.id);
          this.#db.prepare(TENANT_INSERT).run(...tenantParams(t, 'config', old?.created_at ?? now));
        }
        return out;
      })
      .immediate();
  }
}

export class SqliteKeyStore implements KeyStore {
  readonly #db: SqliteDb;
  readonly #clock: Clock;

  constructor(db: SqliteDb, opts: { clock?: Clock } = {}) {
    this.#db = db;
    this.#clock = opts.clock ?? Date.now;
  }

  #get(id: string): ApiKeyRecord | null {
    const row = this.#db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as KeyRow | undefined;
    return row ? keyFromRow(row) : null;
  }

  async create(k: NewApiKey): Promise<CreatedApiKey> {
    checkKeyInput(k);
    const g = keyMaterial(k.plaintext);
    const id = k.id ?? newKeyId();
    const tx = this.#db.transaction(() => {
      if (!this.#db.prepare('SELECT 1 FROM tenants WHERE id = ?').get(k.tenant_id)) {
        throw new StateNotFoundError(`tenant ${k.tenant_id} does not exist`);
      }
      this.#db
        .prepare(
          'INSERT INTO api_keys (id, tenant_id, label, hash, prefix, expires_at, revoked_at, limits, created_at) VALUES (?,?,?,?,?,?,NULL,?,?)',
        )
        .run(
          id,
          k.tenant_id,
          k.label ?? '',
          g.hash,
          g.prefix,
          normalizeTime(k.expires_at),
          k.limits ? JSON.stringify(k.limits) : null,
          isoNow(this.#clock()),
        );
    });
    try {
      tx.immediate();
    } catch (e) {
      if (e instanceof Error && 'code' in e && String(e.code).startsWith('SQLITE_CONSTRAINT')) {
        throw new StateConflictError('key id or secret already exists');
      }
      throw e;
    }
    const rec = this.#get(id);
    if (!rec) throw new Error('key vanished after insert');
    return { plaintext: g.plaintext, key: toKeyInfo(rec) };
  }

  async get(id: string): Promise<ApiKeyInfo | null> {
    checkId('id', id);
    const r = this.#get(id);
    return r ? toKeyInfo(r) : null;
  }

  async list(tenantId?: string): Promise<ApiKeyInfo[]> {
    if (tenantId !== undefined) checkId('tenant_id', tenantId);
    const rows = (
      tenantId === undefined
        ? this.#db.prepare('SELECT * FROM api_keys ORDER BY created_at, id').all()
        : this.#db.prepare('SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id').all(tenantId)
    ) as KeyRow[];
    return rows.map((r) => toKeyInfo(keyFromRow(r)));
  }

  async revoke(id: string): Promise<ApiKeyInfo | null> {
    checkId('id', id);
    this.#db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(isoNow(this.#clock()), id);
    return this.get(id);
  }

  async lookupByHash(hash: string): Promise<ApiKeyRecord | null> {
    const row = this.#db.prepare('SELECT * FROM api_keys WHERE hash = ?').get(hash) as KeyRow | undefined;
    return row ? keyFromRow(row) : null;
  }
}

interface LedgerAggRow {
  tenant: string;
  grp: string;
  requests: number;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  estimated: number;
  partial: number;
}

function whereOf(f: LedgerFilter): { sql: string; params: (string | number)[] } {
  const parts: string[] = [];
  const params: (string | number)[] = [];
  const add = (sql: string, v: string | number): void => {
    parts.push(sql);
    params.push(v);
  };
  if (f.tenant !== undefined) add('tenant = ?', f.tenant);
  if (f.from !== undefined) add('time >= ?', f.from);
  if (f.to !== undefined) add('time < ?', f.to);
  if (f.model !== undefined) add('model = ?', f.model);
  if (f.key_id !== undefined) add('key_id = ?', f.key_id);
  if (f.cache_hit !== undefined) parts.push(f.cache_hit ? 'cache_hit = 1' : 'cache_hit = 0');
  if (f.quota_counted) parts.push('(status < 400 OR tokens_in + tokens_out > 0)');
  return { sql: parts.length ? 'WHERE ' + parts.join(' AND ') : '', params };
}

const SQLITE_GROUP: Record<LedgerGroupBy, string> = {
  day: "strftime('%Y-%m-%d', time / 1000, 'unixepoch')",
  month: "strftime('%Y-%m', time / 1000, 'unixepoch')",
  model: 'model',
  key: "COALESCE(key_id, '')",
};

/** Ledger rows per INSERT statement when a batch is large (one call into SQLite per this many). */
const LEDGER_ROWS_PER_INSERT = 32;

function ledgerInsert(db: SqliteDb, rows: number): Statement<unknown[]> {
  const one = `(${LEDGER_COLUMNS.map(() => '?').join(',')})`;
  return db.prepare(
    `INSERT OR IGNORE INTO ledger (${LEDGER_COLUMNS.join(',')}) VALUES ${Array.from({ length: rows }, () => one).join(',')}`,
  );
}

/** A record's values as SQLite binds them (booleans as 0/1), appended to `out`. */
function pushLedgerParams(out: unknown[], r: LedgerRecord): void {
  for (const v of ledgerParams(r)) out.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
}

export class SqliteLedgerStore implements LedgerStore {
  readonly #db: SqliteDb;
  readonly #insert: Statement<unknown[]>;
  /** LEDGER_ROWS_PER_INSERT rows in one statement: the writer's batches are hundreds of records. */
  readonly #insertMany: Statement<unknown[]>;
  readonly #append: (records: readonly LedgerRecord[]) => number;

  constructor(db: SqliteDb) {
    this.#db = db;
    this.#insert = ledgerInsert(db, 1);
    this.#insertMany = ledgerInsert(db, LEDGER_ROWS_PER_INSERT);
    const append = db.transaction((records: readonly LedgerRecord[]): number => {
      let n = 0;
      let i = 0;
      const params: unknown[] = [];
      for (; i + LEDGER_ROWS_PER_INSERT <= records.length; i += LEDGER_ROWS_PER_INSERT) {
        params.length = 0;
        for (let j = i; j < i + LEDGER_ROWS_PER_INSERT; j++)
          pushLedgerParams(params, records[j] as LedgerRecord);
        n += this.#insertMany.run(params).changes;
      }
      for (; i < records.length; i++) {
        params.length = 0;
        pushLedgerParams(params, records[i] as LedgerRecord);
        n += this.#insert.run(params).changes;
      }
      return n;
    });
    this.#append = (records) => append.immediate(records);
  }

  async append(records: LedgerRecord[]): Promise<number> {
    checkLedgerRecords(records);
    return this.#append(records);
  }

  async query(filter: LedgerFilter, groupBy: LedgerGroupBy): Promise<LedgerRow[]> {
    checkLedgerFilter(filter);
    const w = whereOf(filter);
    const g = SQLITE_GROUP[groupBy];
    const rows = this.#db
      .prepare(
        `SELECT tenant, ${g} AS grp, COUNT(*) AS requests, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out,
                SUM(cost_usd) AS cost_usd, SUM(estimated) AS estimated, SUM(partial) AS partial
           FROM ledger ${w.sql} GROUP BY tenant, grp ORDER BY tenant, grp`,
      )
      .all(...w.params) as LedgerAggRow[];
    return rows.map((r) => ({
      tenant: r.tenant,
      group: r.grp,
      requests: r.requests,
      tokens_in: r.tokens_in,
      tokens_out: r.tokens_out,
      cost_usd: roundCost(r.cost_usd),
      estimated: r.estimated,
      partial: r.partial,
    }));
  }

  async count(filter: LedgerFilter): Promise<number> {
    checkLedgerFilter(filter);
    const w = whereOf(filter);
    const row = this.#db.prepare(`SELECT COUNT(*) AS n FROM ledger ${w.sql}`).get(...w.params) as {
      n: number;
    };
    return row.n;
  }
}
