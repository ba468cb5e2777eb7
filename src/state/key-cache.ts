/**
 * Cached key and tenant lookups with cross-replica invalidation. Authentication runs on every
 * request, so lookups are cached; a revocation anywhere must still take effect everywhere within
 * a second. Two mechanisms, either sufficient:
 *   1. the invalidation bus message (Redis pub/sub) clears the cache at once;
 *   2. the bus version is polled (default every 250 ms) so a message lost during a reconnect is
 *      caught; if the poll fails the cache is bypassed until it works again (fail safe: every
 *      lookup goes to the database).
 * A generation counter stops a lookup that started before an invalidation from re-filling the
 * cache with the stale answer.
 */
import type {
  ApiKeyInfo,
  ApiKeyRecord,
  BackendName,
  Clock,
  ConfigSyncResult,
  CreatedApiKey,
  InvalidationBus,
  KeyStore,
  NewApiKey,
  NewTenant,
  StateHooks,
  StateLogger,
  TenantPatch,
  TenantRecord,
  TenantStore,
} from './ports.js';
import { hashApiKey } from './util.js';
import { StateInvalidInputError, StateUnavailableError } from './errors.js';
import { toKeyInfo } from './memory/catalog.js';

export interface BusCacheOptions {
  /** Positive entries live this long at most (the bus normally clears them sooner). Default 30 s. */
  ttlMs?: number;
  /** Misses are cached this long (brute-force guessing should not hit the DB each time). Default 5 s. */
  negativeTtlMs?: number;
  /** Version poll interval. Default 250 ms. */
  pollMs?: number;
  /** Entries kept at most (oldest dropped). Default 10 000. */
  maxEntries?: number;
  clock?: Clock;
  logger?: StateLogger;
  hooks?: StateHooks;
  /** Which backend carries the bus (for error events). */
  busStore?: BackendName;
  /** Which backend the lookups read (for error events). */
  catalogStore?: BackendName;
  /** Port named in error events. Default 'keys'. */
  port?: 'keys' | 'tenants';
}

/** A TTL map cleared on every bus event or version change. */
export class BusCache<V> {
  readonly #bus: InvalidationBus;
  readonly #entries = new Map<string, { v: V | null; exp: number }>();
  readonly #ttl: number;
  readonly #negTtl: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #opts: BusCacheOptions;
  readonly #unsub: () => void;
  readonly #timer: NodeJS.Timeout;
  #gen = 0;
  #version: number | undefined;
  #healthy = true;
  #polling = false;

  constructor(bus: InvalidationBus, opts: BusCacheOptions = {}) {
    this.#bus = bus;
    this.#opts = opts;
    this.#ttl = opts.ttlMs ?? 30_000;
    this.#negTtl = opts.negativeTtlMs ?? 5_000;
    this.#max = opts.maxEntries ?? 10_000;
    this.#clock = opts.clock ?? Date.now;
    this.#unsub = bus.subscribe(() => this.clear());
    this.#timer = setInterval(() => void this.#poll(), opts.pollMs ?? 250);
    this.#timer.unref();
    void this.#poll();
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const v = await this.#bus.version();
      if (this.#version !== undefined && v !== this.#version) this.clear();
      this.#version = v;
      if (!this.#healthy)
        this.#opts.logger?.warn({ store: this.#opts.busStore }, 'invalidation bus back; key cache on');
      this.#healthy = true;
    } catch (error) {
      if (this.#healthy) {
        this.#opts.hooks?.onError?.({
          store: this.#opts.busStore ?? 'redis',
          port: 'invalidation',
          op: 'version',
          mode: 'fail_closed',
          error,
        });
        this.#opts.logger?.warn(
          { err: error, store: this.#opts.busStore },
          'invalidation bus unreachable; key cache bypassed until it is back',
        );
      }
      this.#healthy = false;
      this.clear();
    } finally {
      this.#polling = false;
    }
  }

  clear(): void {
    this.#gen++;
    this.#entries.clear();
  }

  async get(k: string, load: () => Promise<V | null>): Promise<V | null> {
    const now = this.#clock();
    const hit = this.#entries.get(k);
    if (hit && hit.exp > now && this.#healthy) return hit.v;
    const gen = this.#gen;
    let v: V | null;
    try {
      v = await load();
    } catch (error) {
      // An input the store refuses (a NUL in a tenant id) is the caller's to fix: a 400, not the
      // store unavailable; nothing to report.
      if (error instanceof StateInvalidInputError) throw error;
      // Authentication cannot fail open: report and refuse (the gateway answers 503).
      const store = this.#opts.catalogStore ?? 'postgres';
      this.#opts.hooks?.onError?.({
        store,
        port: this.#opts.port ?? 'keys',
        op: 'lookup',
        mode: 'fail_closed',
        error,
      });
      this.#opts.logger?.error({ err: error, store }, 'key/tenant lookup failed');
      throw new StateUnavailableError(store, 'key/tenant store unavailable', error);
    }
    if (gen === this.#gen && this.#healthy) {
      if (this.#entries.size >= this.#max) {
        const oldest = this.#entries.keys().next();
        if (!oldest.done) this.#entries.delete(oldest.value);
      }
      this.#entries.set(k, { v, exp: now + (v === null ? this.#negTtl : this.#ttl) });
    }
    return v;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#unsub();
    this.#entries.clear();
  }
}

export type KeyResolution =
  | { ok: true; key: ApiKeyInfo }
  | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' | 'expired'; key?: ApiKeyInfo };

/** What the gateway calls to authenticate: plaintext bearer key -> key record (cached). */
export class KeyResolver {
  readonly #keys: KeyStore;
  readonly #cache: BusCache<ApiKeyRecord>;
  readonly #clock: Clock;

  constructor(keys: KeyStore, bus: InvalidationBus, opts: BusCacheOptions = {}) {
    this.#keys = keys;
    this.#cache = new BusCache(bus, opts);
    this.#clock = opts.clock ?? Date.now;
  }

  async resolve(plaintext: string): Promise<KeyResolution> {
    if (plaintext.length < 8 || plaintext.length > 256 || /\s/.test(plaintext)) {
      return { ok: false, reason: 'malformed' };
    }
    const hash = hashApiKey(plaintext);
    const rec = await this.#cache.get(hash, () => this.#keys.lookupByHash(hash));
    if (!rec) return { ok: false, reason: 'unknown' };
    const key = toKeyInfo(rec);
    if (rec.revoked_at !== null) return { ok: false, reason: 'revoked', key };
    if (rec.expires_at !== null && Date.parse(rec.expires_at) <= this.#clock())
      return { ok: false, reason: 'expired', key };
    return { ok: true, key };
  }

  invalidate(): void {
    this.#cache.clear();
  }

  close(): void {
    this.#cache.close();
  }
}

/** Cached tenant lookups (per request), cleared by the same bus. */
export class TenantResolver {
  readonly #tenants: TenantStore;
  readonly #cache: BusCache<TenantRecord>;

  constructor(tenants: TenantStore, bus: InvalidationBus, opts: BusCacheOptions = {}) {
    this.#tenants = tenants;
    this.#cache = new BusCache(bus, { ...opts, port: 'tenants' });
  }

  get(id: string): Promise<TenantRecord | null> {
    return this.#cache.get(id, () => this.#tenants.get(id));
  }

  invalidate(): void {
    this.#cache.clear();
  }

  close(): void {
    this.#cache.close();
  }
}

/** KeyStore that announces creations and revocations on the bus (after the DB commit). */
export class InvalidatingKeyStore implements KeyStore {
  readonly #inner: KeyStore;
  readonly #bus: InvalidationBus;

  constructor(inner: KeyStore, bus: InvalidationBus) {
    this.#inner = inner;
    this.#bus = bus;
  }

  async create(k: NewApiKey): Promise<CreatedApiKey> {
    const out = await this.#inner.create(k);
    await this.#bus.publish({ kind: 'key_created', tenant: out.key.tenant_id, id: out.key.id });
    return out;
  }
  get(id: string): Promise<ApiKeyInfo | null> {
    return this.#inner.get(id);
  }
  list(tenantId?: string): Promise<ApiKeyInfo[]> {
    return this.#inner.list(tenantId);
  }
  async revoke(id: string): Promise<ApiKeyInfo | null> {
    const out = await this.#inner.revoke(id);
    if (out) await this.#bus.publish({ kind: 'key_revoked', tenant: out.tenant_id, id: out.id });
    return out;
  }
  lookupByHash(hash: string): Promise<ApiKeyRecord | null> {
    return this.#inner.lookupByHash(hash);
  }
}

/** TenantStore that announces changes on the bus (deleting a tenant also kills its keys). */
export class InvalidatingTenantStore implements TenantStore {
  readonly #inner: TenantStore;
  readonly #bus: InvalidationBus;

  constructor(inner: TenantStore, bus: InvalidationBus) {
    this.#inner = inner;
    this.#bus = bus;
  }

  async #changed(id: string): Promise<void> {
    await this.#bus.publish({ kind: 'tenant_changed', tenant: id, id });
  }
  async create(t: NewTenant): Promise<TenantRecord> {
    const out = await this.#inner.create(t);
    await this.#changed(t.id);
    return out;
  }
  get(id: string): Promise<TenantRecord | null> {
    return this.#inner.get(id);
  }
  list(): Promise<TenantRecord[]> {
    return this.#inner.list();
  }
  async update(id: string, patch: TenantPatch): Promise<TenantRecord | null> {
    const out = await this.#inner.update(id, patch);
    if (out) await this.#changed(id);
    return out;
  }
  async delete(id: string): Promise<boolean> {
    const out = await this.#inner.delete(id);
    if (out) await this.#changed(id);
    return out;
  }
  async syncFromConfig(tenants: NewTenant[], opts?: { prune?: boolean }): Promise<ConfigSyncResult> {
    const out = await this.#inner.syncFromConfig(tenants, opts);
    await this.#changed('*');
    return out;
  }
}
