/** In-process tenants, keys and ledger (tests; the embedded family persists these in SQLite). */
import { StateConflictError, StateNotFoundError, apiTenantsTaken } from '../errors.js';
import {
  checkId,
  checkKeyInput,
  checkLedgerFilter,
  checkLedgerRecords,
  checkTenantInput,
} from '../validate-input.js';
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
import { keyMaterial, normalizeTime, isoNow, ledgerGroupOfTime, newKeyId } from '../util.js';

export function toKeyInfo(k: ApiKeyRecord): ApiKeyInfo {
  const { hash: _hash, ...info } = k;
  return info;
}

export function tenantFromNew(t: NewTenant, createdAt: string): TenantRecord {
  return {
    id: t.id,
    display_name: t.display_name,
    company: t.company ?? null,
    industry: t.industry ?? null,
    system_prompt: t.system_prompt ?? null,
    prompt_policy: t.prompt_policy ?? null,
    allowed_models: [...(t.allowed_models ?? [])],
    limits: t.limits ?? null,
    priority: t.priority,
    source: t.source ?? 'api',
    created_at: createdAt,
  };
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

export class MemoryTenantStore implements TenantStore {
  readonly #clock: Clock;
  readonly #tenants = new Map<string, TenantRecord>();
  /** Set by MemoryKeyStore so deleting a tenant deletes its keys. */
  onDelete: ((id: string) => void) | undefined;
  /** Set by MemoryKeyStore: whether a tenant has API keys (a config sync keeps such a tenant). */
  hasKeys: ((id: string) => boolean) | undefined;

  constructor(opts: { clock?: Clock } = {}) {
    this.#clock = opts.clock ?? Date.now;
  }

  async create(t: NewTenant): Promise<TenantRecord> {
    checkTenantInput(t);
    if (this.#tenants.has(t.id)) throw new StateConflictError(`tenant ${t.id} already exists`);
    const rec = tenantFromNew(t, isoNow(this.#clock()));
    this.#tenants.set(t.id, rec);
    return clone(rec);
  }

  async get(id: string): Promise<TenantRecord | null> {
    checkId('id', id);
    const t = this.#tenants.get(id);
    return t ? clone(t) : null;
  }

  async list(): Promise<TenantRecord[]> {
    return [...this.#tenants.values()].sort((a, b) => cmp(a.id, b.id)).map(clone);
  }

  async update(id: string, patch: TenantPatch): Promise<TenantRecord | null> {
    checkTenantInput(patch, id);
    const t = this.#tenants.get(id);
    if (!t) return null;
    const next = patchedTenant(t, clone(patch));
    this.#tenants.set(id, next);
    return clone(next);
  }

  async delete(id: string): Promise<boolean> {
    checkId('id', id);
    const had = this.#tenants.delete(id);
    if (had) this.onDelete?.(id);
    return had;
  }

  async syncFromConfig(tenants: NewTenant[], opts: { prune?: boolean } = {}): Promise<ConfigSyncResult> {
    tenants.forEach((t) => checkTenantInput(t));
    const taken = tenants.filter((t) => this.#tenants.get(t.id)?.source === 'api').map((t) => t.id);
    if (taken.length > 0) throw apiTenantsTaken(taken);
    const ids = new Set(tenants.map((t) => t.id));
    const out: ConfigSyncResult = { removed: [], retained: [] };
    for (const t of [...this.#tenants.values()].sort((a, b) => cmp(a.id, b.id))) {
      if (opts.prune === false || t.source !== 'config' || ids.has(t.id)) continue;
      if (this.hasKeys?.(t.id)) out.retained.push(t.id);
      else {
        await this.delete(t.id);
        out.removed.push(t.id);
      }
    }
    for (const t of tenants) {
      const old = this.#tenants.get(t.id);
      this.#tenants.set(
        t.id,
        tenantFromNew({ ...t, source: 'config' }, old?.created_at ?? isoNow(this.#clock())),
      );
    }
    return out;
  }

  has(id: string): boolean {
    return this.#tenants.has(id);
  }
}

export class MemoryKeyStore implements KeyStore {
  readonly #clock: Clock;
  readonly #tenants: MemoryTenantStore;
  readonly #keys = new Map<string, ApiKeyRecord>();

  constructor(tenants: MemoryTenantStore, opts: { clock?: Clock } = {}) {
    this.#clock = opts.clock ?? Date.now;
    this.#tenants = tenants;
    tenants.onDelete = (id) => {
      for (const [kid, k] of this.#keys) if (k.tenant_id === id) this.#keys.delete(kid);
    };
    tenants.hasKeys = (id) => {
      for (const k of this.#keys.values()) if (k.tenant_id === id) return true;
      return false;
    };
  }

  async create(k: NewApiKey): Promise<CreatedApiKey> {
    checkKeyInput(k);
    if (!this.#tenants.has(k.tenant_id)) throw new StateNotFoundError(`tenant ${k.tenant_id} does not exist`);
    const g = keyMaterial(k.plaintext);
    for (const x of this.#keys.values()) {
      if (x.id === k.id || x.hash === g.hash) throw new StateConflictError('key id or secret already exists');
    }
    const rec: ApiKeyRecord = {
      id: k.id ?? newKeyId(),
      tenant_id: k.tenant_id,
      label: k.label ?? '',
      hash: g.hash,
      prefix: g.prefix,
      expires_at: normalizeTime(k.expires_at),
      revoked_at: null,
      limits: k.limits ?? null,
      created_at: isoNow(this.#clock()),
    };
    this.#keys.set(rec.id, rec);
    return { plaintext: g.plaintext, key: toKeyInfo(clone(rec)) };
  }

  async get(id: string): Promise<ApiKeyInfo | null> {
    checkId('id', id);
    const k = this.#keys.get(id);
    return k ? toKeyInfo(clone(k)) : null;
  }

  async list(tenantId?: string): Promise<ApiKeyInfo[]> {
    if (tenantId !== undefined) checkId('tenant_id', tenantId);
    return [...this.#keys.values()]
      .filter((k) => tenantId === undefined || k.tenant_id === tenantId)
      .sort((a, b) => cmp(a.created_at, b.created_at) || cmp(a.id, b.id))
      .map((k) => toKeyInfo(clone(k)));
  }

  async revoke(id: string): Promise<ApiKeyInfo | null> {
    checkId('id', id);
    const k = this.#keys.get(id);
    if (!k) return null;
    k.revoked_at ??= isoNow(this.#clock());
    return toKeyInfo(clone(k));
  }

  async lookupByHash(hash: string): Promise<ApiKeyRecord | null> {
    for (const k of this.#keys.values()) if (k.hash === hash) return clone(k);
    return null;
  }
}

export function matchesLedgerFilter(r: LedgerRecord, f: LedgerFilter): boolean {
  return (
    (f.tenant === undefined || r.tenant === f.tenant) &&
    (f.from === undefined || r.time >= f.from) &&
    (f.to === undefined || r.time < f.to) &&
    (f.model === undefined || r.model === f.model) &&
    (f.key_id === undefined || r.key_id === f.key_id) &&
    (f.cache_hit === undefined || r.cache_hit === f.cache_hit) &&
    (!f.quota_counted || r.status < 400 || r.tokens_in + r.tokens_out > 0)
  );
}

export function ledgerGroup(r: LedgerRecord, g: LedgerGroupBy): string {
  switch (g) {
    case 'day':
    case 'month':
      return ledgerGroupOfTime(g, r.time);
    case 'model':
      return r.model;
    case 'key':
      return r.key_id ?? '';
  }
}

/** Cost sums are rounded to 1e-9 USD so every backend reports the same figure. */
export function roundCost(v: number): number {
  return Math.round(v * 1e9) / 1e9;
}

export class MemoryLedgerStore implements LedgerStore {
  readonly #records = new Map<string, LedgerRecord>();

  async append(records: LedgerRecord[]): Promise<number> {
    checkLedgerRecords(records);
    let n = 0;
    for (const r of records) {
      if (this.#records.has(r.id)) continue;
      this.#records.set(r.id, { ...r });
      n++;
    }
    return n;
  }

  async query(filter: LedgerFilter, groupBy: LedgerGroupBy): Promise<LedgerRow[]> {
    checkLedgerFilter(filter);
    const rows = new Map<string, LedgerRow>();
    for (const r of this.#records.values()) {
      if (!matchesLedgerFilter(r, filter)) continue;
      const group = ledgerGroup(r, groupBy);
      const k = `${r.tenant}\u0000${group}`;
      let row = rows.get(k);
      if (!row) {
        row = {
          tenant: r.tenant,
          group,
          requests: 0,
          tokens_in: 0,
          tokens_out: 0,
          cost_usd: 0,
          estimated: 0,
          partial: 0,
        };
        rows.set(k, row);
      }
      row.requests++;
      row.tokens_in += r.tokens_in;
      row.tokens_out += r.tokens_out;
      row.cost_usd += r.cost_usd;
      if (r.estimated) row.estimated++;
      if (r.partial === true) row.partial++;
    }
    return [...rows.values()]
      .map((r) => ({ ...r, cost_usd: roundCost(r.cost_usd) }))
      .sort((a, b) => (a.tenant === b.tenant ? cmp(a.group, b.group) : cmp(a.tenant, b.tenant)));
  }

  async count(filter: LedgerFilter): Promise<number> {
    checkLedgerFilter(filter);
    let n = 0;
    for (const r of this.#records.values()) if (matchesLedgerFilter(r, filter)) n++;
    return n;
  }
}

/** Byte-order comparison (same as SQL's C collation), so every backend sorts alike. */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
