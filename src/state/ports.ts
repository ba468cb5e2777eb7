/**
 * State ports: the interfaces the gateway talks to. Two families implement them:
 *   embedded    = memory counters + SQLite (tenants, keys, ledger, quota usage) under a data dir
 *   distributed = Redis (counters, in-flight leases, quota reservations, invalidation bus)
 *                 + Postgres (tenants, keys, ledger)
 * Every operation that decides admission is atomic inside the store (Lua in Redis, a transaction
 * in SQL, one synchronous JS step in memory): never get-then-set across a network hop.
 * Every key and record carries the tenant id (see ScopeKey), so one tenant's state never
 * collides with another's and Redis keys hash by tenant ({tenant} hash tag).
 * Nothing here knows about HTTP.
 */

/** Milliseconds since the epoch. Injected so tests can move time (UTC rollover, expiry). */
export type Clock = () => number;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

/** Minimal logger (pino fits). */
export interface StateLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export type FailureMode = 'fail_open' | 'fail_closed';
/** Which backing service; the label of portico_state_errors_total / portico_state_backend_up. */
export type BackendName = 'memory' | 'sqlite' | 'redis' | 'postgres';
/** Which port an operation belongs to (for logs). */
export type PortName =
  'counters' | 'inflight' | 'quotas' | 'tenants' | 'keys' | 'ledger' | 'invalidation' | 'responses';

export interface StateErrorEvent {
  store: BackendName;
  port: PortName;
  op: string;
  /** fail_open: the request was let through; fail_closed: it was refused; retry: will be retried. */
  mode: FailureMode | 'retry';
  error: unknown;
}

/** Hooks the integrator wires to metrics. Never throw from them. */
export interface StateHooks {
  /** Count in portico_state_errors_total{store,mode}. */
  onError?(e: StateErrorEvent): void;
  /** Set portico_state_backend_up{store} to 1/0. */
  onBackendUp?(store: BackendName, up: boolean): void;
  /** Usage records lost for good: dropped with no copy in the crash journal (portico_ledger_dropped_total). */
  onLedgerLost?(records: number): void;
}

/** A counter / quota key. `name` is free-form within the tenant, e.g. "key:key_abc:rps". */
export interface ScopeKey {
  tenant: string;
  name: string;
}

// ---------------------------------------------------------------- counters (rate limiting)

export interface BucketOptions {
  /** Refill rate in tokens per second (requests/s when cost is 1). > 0. */
  ratePerSec: number;
  /** Bucket capacity. >= 1. */
  burst: number;
  /** Default 1. */
  cost?: number;
  /** Override the store's clock for this call (tests). */
  now?: number;
}

/** One bucket of a consumeAll call. */
export interface BucketCheck {
  key: ScopeKey;
  ratePerSec: number;
  burst: number;
  /** Default 1. */
  cost?: number;
}

export interface LimitResult {
  allowed: boolean;
  /** Whole units left after this call (floored). */
  remaining: number;
  /** 0 when allowed; else ms until this cost could be admitted (Infinity never happens: cost>limit gives time-to-full). */
  retryAfterMs: number;
  /** ms until the counter is back to full (X-RateLimit-Reset). */
  resetMs: number;
  limit: number;
  /** True when the store was unreachable and fail_open let this through. */
  degraded?: boolean;
}

/** What consumeAll did: every bucket was charged, or none was. */
export interface AllLimitResult {
  /** True when every bucket had the cost and each was charged; false: none was charged. */
  allowed: boolean;
  /**
   * Per bucket, in the order asked. `allowed`: this bucket had the cost (a bucket that had it is
   * still not charged when another refused); `retryAfterMs`: 0 for a bucket that had it, else ms
   * until it will; `remaining`/`resetMs`: the bucket after this call.
   */
  results: LimitResult[];
  /** True when the store was unreachable and fail_open let this through. */
  degraded?: boolean;
}

export interface WindowOptions {
  /** Budget per window (e.g. tokens per minute). */
  limit: number;
  windowMs: number;
  /** Estimated cost to charge now (may be 0). */
  cost: number;
  /**
   * With it, charge as much of `cost` as fits, at least `minCost` (whole units); `charge.cost`
   * says how much. Without it, all of `cost` or nothing.
   */
  minCost?: number;
  now?: number;
}

/** What consumeWindow charged, so settle() can later apply (actual - estimate) to the same window. */
export interface WindowCharge {
  key: ScopeKey;
  windowMs: number;
  windowStart: number;
  cost: number;
  /**
   * True when the store was unreachable and fail_open let the request through: `cost` was never
   * added to the window, so settleWindow adds the whole actual cost (not actual - cost) and there is
   * nothing to give back early.
   */
  degraded?: boolean;
}

export interface WindowResult extends LimitResult {
  /** Usage in the sliding window after this call (weighted previous window + current). */
  used: number;
  /** Present when allowed: pass to settleWindow with the real cost. */
  charge?: WindowCharge;
}

export interface InflightLease {
  key: ScopeKey;
  id: string;
  expiresAt: number;
}

export interface AcquireOptions {
  max: number;
  /** Lease time-to-live; a crashed replica's slots expire after this. Renew long streams. Default 120 s. */
  leaseMs?: number;
  now?: number;
}

export interface AcquireResult {
  /** Null when the cap is reached. */
  lease: InflightLease | null;
  /** Slots held after this call (including the new one when acquired). */
  current: number;
  degraded?: boolean;
}

export interface CounterStore {
  /** Token bucket: requests/s with burst. */
  consume(key: ScopeKey, opts: BucketOptions): Promise<LimitResult>;
  /**
   * Several token buckets, all or none, in one atomic step: each is charged its cost when every one
   * has it, else none is (a request refused by one bucket costs nothing in the others). The
   * buckets are one tenant's (one Redis Cluster slot: the tenant is the keys' hash tag) and
   * distinct; a RangeError otherwise. `now`: override the store's clock (tests).
   */
  consumeAll(buckets: readonly BucketCheck[], now?: number): Promise<AllLimitResult>;
  /** Sliding-window budget (e.g. tokens/min): charge an estimate now. Refused charges cost nothing. */
  consumeWindow(key: ScopeKey, opts: WindowOptions): Promise<WindowResult>;
  /**
   * Settle a window charge with the real cost: adds (actual - charge.cost) to the charged window, or
   * the whole actual cost for a `degraded` charge (its estimate was never added).
   */
  settleWindow(charge: WindowCharge, actualCost: number): Promise<void>;
  /** In-flight slot with a lease; null lease when `max` slots are held. */
  acquire(key: ScopeKey, opts: AcquireOptions): Promise<AcquireResult>;
  /** Extend a lease (long streams). Returns false when it had already expired. */
  renew(lease: InflightLease, leaseMs?: number): Promise<boolean>;
  release(lease: InflightLease): Promise<void>;
  /** Current number of unexpired leases. */
  inflight(key: ScopeKey): Promise<number>;
}

// ---------------------------------------------------------------- quotas

export type QuotaWindow = 'day' | 'month';
export type QuotaMetric = 'tokens' | 'requests';

export interface QuotaLimits {
  day?: { tokens?: number; requests?: number };
  month?: { tokens?: number; requests?: number };
}

export interface QuotaScope {
  /** Scope name within the tenant: "tenant" or "key:<key id>". */
  name: string;
  limits: QuotaLimits;
}

export interface ReserveRequest {
  tenant: string;
  /** All scopes are reserved atomically: all or none. */
  scopes: readonly QuotaScope[];
  /** The most tokens to hold: the prompt estimate + the longest answer the request may get. */
  tokens: number;
  /**
   * The fewest tokens worth holding (the prompt estimate + the shortest useful answer). The store
   * holds as many as fit in every token limit, up to `tokens` and at least `minTokens`, in the same
   * atomic step, and says how many in `reservation.tokens`. Default: `tokens` (all or nothing).
   */
  minTokens?: number;
  /** Default 1. */
  requests?: number;
  /** The replica holding the reservation; it renews the lease while the request runs. */
  owner?: string;
  /**
   * Lease: how long the hold lasts unless its owner renews it (see renew), so a crashed replica's
   * holds come back within one lease. Default 15 s.
   */
  ttlMs?: number;
  now?: number;
}

/** Opaque-ish handle: carries enough to settle even after the reservation expired. */
export interface QuotaReservation {
  id: string;
  tenant: string;
  scopes: string[];
  /** Window ids this reservation counts in, e.g. {day:"2026-11-22", month:"2026-11"}. */
  windows: { day: string; month: string };
  /** Tokens held: between the request's minTokens and tokens. */
  tokens: number;
  requests: number;
  /** The replica that holds it ('' when none was given). */
  owner: string;
  /** When the lease ends unless renewed (ms epoch). */
  expiresAt: number;
  degraded?: boolean;
}

export type ReserveResult =
  | { ok: true; reservation: QuotaReservation }
  | {
      ok: false;
      scope: string;
      window: QuotaWindow;
      metric: QuotaMetric;
      limit: number;
      /** Committed (settled) usage in that window before this request. */
      used: number;
      /** Held by reservations of requests in flight in that window. */
      held: number;
      /** The least this request needed (minTokens, or its requests). */
      needed: number;
      /** ms epoch of the UTC boundary when the window resets. */
      resetAt: number;
    };

export interface QuotaUsage {
  window: QuotaWindow;
  /** e.g. "2026-11-22" or "2026-11". */
  windowId: string;
  usedTokens: number;
  usedRequests: number;
  reservedTokens: number;
  reservedRequests: number;
  resetAt: number;
}

/** Usage moved from one scope to another in one window (QuotaStore.moveUsage). */
export interface QuotaMoved {
  window: QuotaWindow;
  windowId: string;
  tokens: number;
  requests: number;
}

export interface QuotaStore {
  reserve(req: ReserveRequest): Promise<ReserveResult>;
  /**
   * Settle with the real usage: releases the hold and adds `actual` to the windows the reservation
   * was made in. Settling an expired reservation still records the usage (the call did happen).
   * Idempotent per reservation id.
   */
  commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<void>;
  /** Drop the hold without recording usage (the call failed before reaching upstream). */
  release(res: QuotaReservation): Promise<void>;
  /**
   * Extend the leases of these reservations to now + ttlMs (their owner calls this every third of
   * a lease while the requests run). Settled or already released ones are left alone. Returns how
   * many were still held.
   */
  renew(reservations: readonly QuotaReservation[], ttlMs?: number): Promise<number>;
  /**
   * Hold again those of these reservations whose lease lapsed while their request still runs
   * (their owner's renew extended fewer than it asked: the store was unreachable, or the owner
   * stalled, for longer than a lease). One that was neither committed nor released gets its tokens
   * and requests back in every tally it counts in, whatever the limits now (its request is running
   * and its commit will count its usage anyway), and a lease to now + ttlMs. Held, settled, degraded
   * and forgotten ones are left alone (Redis forgets an ended hold SETTLED_RETENTION_MS after its
   * lease). Returns the ids held again.
   */
  rehold(reservations: readonly QuotaReservation[], ttlMs?: number): Promise<string[]>;
  /**
   * Release every held reservation whose owner is not `liveOwner`. Only for a store that one
   * gateway writes to (embedded): at start-up whatever is still held belongs to an earlier process
   * that died. A shared store (Redis) does not offer it: there, other owners are live replicas and
   * a dead one's holds end with their lease.
   */
  releaseOthers?(liveOwner: string): Promise<number>;
  usage(tenant: string, scope: string, window: QuotaWindow, now?: number): Promise<QuotaUsage>;
  /**
   * Rename a scope's usage: add the usage settled under scope `from` in the current day and month
   * windows to scope `to`, and leave `from` with none — atomically (a crash or a concurrent move
   * leaves each window's usage under exactly one of the two). Holds stay where they are: their
   * reservations settle against the scope they were made in. Returns what moved (windows with none
   * are left out), so a second move of the same scope moves nothing. Used once at start-up for the
   * config key ids (tenancy/config-key-ids.ts).
   */
  moveUsage(tenant: string, from: string, to: string, now?: number): Promise<QuotaMoved[]>;
  /**
   * Raise a scope's settled usage in the current day and month windows to at least `atLeast`
   * (never lower it), atomically per window. Used when a tenant or key gains a quota: its usage so
   * far in the windows, from the ledger, is counted (a quota set at noon does not start the day
   * from zero). Returns what was added (windows with nothing added are left out).
   */
  raiseUsage(
    tenant: string,
    scope: string,
    atLeast: Record<QuotaWindow, { tokens: number; requests: number }>,
    now?: number,
  ): Promise<QuotaMoved[]>;
}

// ---------------------------------------------------------------- tenants and keys

export type TenantSource = 'config' | 'api';

export interface TenantRecord {
  id: string;
  display_name: string;
  company: string | null;
  industry: string | null;
  system_prompt: string | null;
  prompt_policy: JsonObject | null;
  /** Empty = every model the gateway serves. */
  allowed_models: string[];
  /** Limits as JSON; the config schema parses them. */
  limits: JsonObject | null;
  /** Admission priority class (config names it; e.g. "high" | "normal" | "low"). */
  priority: string;
  source: TenantSource;
  /** ISO-8601 UTC. */
  created_at: string;
}

export type NewTenant = Omit<TenantRecord, 'created_at' | 'source'> & { source?: TenantSource };
export type TenantPatch = Partial<Omit<TenantRecord, 'id' | 'created_at' | 'source'>> & {
  /**
   * Keys set in `limits`, merged into the stored value inside the update's transaction (so two
   * updates of different keys both land; `limits` itself replaces the whole value). A null value
   * removes its key.
   */
  limits_merge?: JsonObject;
};

/** The record an update makes: the patch over the current one (limits_merge merged into limits). */
export function patchedTenant(cur: TenantRecord, patch: TenantPatch): TenantRecord {
  const { limits_merge: merge, ...rest } = patch;
  const next: TenantRecord = { ...cur, ...rest, id: cur.id, created_at: cur.created_at, source: cur.source };
  if (merge) {
    const limits: Record<string, unknown> = { ...(next.limits ?? {}) };
    for (const [k, v] of Object.entries(merge)) {
      if (v === null) delete limits[k];
      else limits[k] = v;
    }
    next.limits = limits as JsonObject;
  }
  return next;
}

export interface TenantStore {
  /** Throws StateConflictError if the id exists. */
  create(t: NewTenant): Promise<TenantRecord>;
  get(id: string): Promise<TenantRecord | null>;
  list(): Promise<TenantRecord[]>;
  /** Null when absent. */
  update(id: string, patch: TenantPatch): Promise<TenantRecord | null>;
  /** Deletes the tenant and its keys. False when absent. */
  delete(id: string): Promise<boolean>;
  /**
   * Make the config-declared tenants the `source:'config'` set: upsert these, delete config-sourced
   * tenants no longer declared (API tenants untouched). One transaction. A config id that is an API
   * tenant's is refused with a StateConflictError naming the ids, and nothing changes: a takeover
   * would drop the tenant's policy, and a later config without the id would delete it with its keys
   * (review, 2026-12). Tenancy checks this first to refuse such a config with its paths.
   *
   * A config-sourced tenant not declared here that has API keys (revoked ones included) is NOT
   * deleted: it is `retained` as it is. Replicas share the store, and the one not declaring it may
   * run an older config (a rolling update, a rollback, an old pod restarting): deleting would take
   * the keys created for the tenant through the admin API with it, for good (review, 2026-12).
   * A later sync that declares it again makes it config-sourced as before, keys intact. The
   * keys cannot be created on a deleted tenant meanwhile: the check and the delete are atomic.
   * `prune: false` only upserts (nothing is deleted or retained).
   */
  syncFromConfig(tenants: NewTenant[], opts?: { prune?: boolean }): Promise<ConfigSyncResult>;
}

/** What a TenantStore.syncFromConfig did with the config-sourced tenants it was not given. */
export interface ConfigSyncResult {
  /** Deleted (they had no API keys). */
  removed: string[];
  /** Kept because they have API keys (see syncFromConfig). */
  retained: string[];
}

/** A key as stored (no plaintext ever). */
export interface ApiKeyRecord {
  id: string;
  tenant_id: string;
  label: string;
  /** Hex SHA-256 of the plaintext key. */
  hash: string;
  /** First characters of the plaintext, for display ("sk-portico-AbC1"). */
  prefix: string;
  expires_at: string | null;
  revoked_at: string | null;
  limits: JsonObject | null;
  created_at: string;
}

/** What lists show: no hash, no secret. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'hash'>;

export interface NewApiKey {
  tenant_id: string;
  /** Stable id for config-declared keys; default a fresh `key_...`. */
  id?: string;
  /** Import a known secret (config-declared demo keys); default: generate one. Only its hash is stored. */
  plaintext?: string;
  label?: string;
  expires_at?: string | null;
  limits?: JsonObject | null;
}

export interface CreatedApiKey {
  /** Shown once; never stored. */
  plaintext: string;
  key: ApiKeyInfo;
}

export interface KeyStore {
  /** Throws StateNotFoundError when the tenant does not exist, StateConflictError on a duplicate id or secret. */
  create(k: NewApiKey): Promise<CreatedApiKey>;
  get(id: string): Promise<ApiKeyInfo | null>;
  list(tenantId?: string): Promise<ApiKeyInfo[]>;
  /** Sets revoked_at (first revocation wins). Null when absent. */
  revoke(id: string): Promise<ApiKeyInfo | null>;
  lookupByHash(hash: string): Promise<ApiKeyRecord | null>;
}

// ---------------------------------------------------------------- invalidation bus

export interface InvalidationEvent {
  kind: 'key_revoked' | 'key_created' | 'tenant_changed';
  tenant: string;
  id: string;
}

/** Tells every replica that cached key/tenant lookups are stale. */
export interface InvalidationBus {
  publish(e: InvalidationEvent): Promise<void>;
  /** Returns an unsubscribe function. */
  subscribe(fn: (e: InvalidationEvent) => void): () => void;
  /** A number that changes on every publish (polled to catch missed messages). */
  version(): Promise<number>;
  /**
   * True while a published change has reached no channel the other replicas read (the
   * distributed bus retries it; dual-bus.ts). Absent: every publish is delivered or throws.
   */
  undelivered?(): boolean;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- ledger

export interface LedgerRecord {
  /** Unique; the request id. A retried append with the same id is ignored. */
  id: string;
  /** ms epoch. */
  time: number;
  tenant: string;
  key_id: string | null;
  /** The model alias the client asked for. */
  model: string;
  backend: string | null;
  tokens_in: number;
  tokens_out: number;
  /** Token counts came from a tokenizer, not upstream usage. */
  estimated: boolean;
  cost_usd: number;
  latency_ms: number;
  /** HTTP status returned to the client. */
  status: number;
  cache_hit: boolean;
  request_id: string;
  /**
   * The answer was cut short (a stream the client cancelled or the upstream broke off): tokens_out
   * counts what reached the client. Absent: false.
   */
  partial?: boolean;
}

export type LedgerGroupBy = 'day' | 'month' | 'model' | 'key';

export interface LedgerFilter {
  tenant?: string;
  /** ms epoch, inclusive. */
  from?: number;
  /** ms epoch, exclusive. */
  to?: number;
  model?: string;
  key_id?: string;
  /** Only cache hits (true) or only the others (false). */
  cache_hit?: boolean;
  /**
   * Only the rows a quota counts: answered below 400, or with tokens (a failed request that
   * produced none is released, not counted). Used to seed quota usage from the ledger.
   */
  quota_counted?: boolean;
}

export interface LedgerRow {
  tenant: string;
  /** The day ("2026-11-22"), month ("2026-11"), model alias or key id ("" for no key). */
  group: string;
  requests: number;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  /** How many of the requests have estimated token counts. */
  estimated: number;
  /** How many of the requests were cut short (billed for what was delivered). */
  partial: number;
}

export interface LedgerStore {
  /** Idempotent by id; returns how many were new. */
  append(records: LedgerRecord[]): Promise<number>;
  /** Rows ordered by tenant, then group. */
  query(filter: LedgerFilter, groupBy: LedgerGroupBy): Promise<LedgerRow[]>;
  count(filter: LedgerFilter): Promise<number>;
}

// ---------------------------------------------------------------- stored responses (Responses API)

/**
 * One stored Responses API response (`store: true`): what GET /v1/responses/{id} returns and what
 * `previous_response_id` continues from. Always scoped by tenant: a tenant never reads, lists or
 * deletes another tenant's responses, whatever id it presents.
 */
export interface StoredResponse {
  tenant: string;
  /** `resp_...` */
  id: string;
  /**
   * The stored document (the response object, its input items, the conversation before it). Kept
   * as JSON text by every store, so any string (NUL, unpaired surrogates) comes back exactly as put.
   */
  data: JsonValue;
  /** ms epoch. */
  createdAt: number;
  /** ms epoch; after it the response reads as absent and may be purged. */
  expiresAt: number;
}

export interface ResponseStore {
  /** Insert or replace (same tenant and id). */
  put(r: StoredResponse): Promise<void>;
  /** Null when absent, expired, or stored by another tenant. */
  get(tenant: string, id: string, now?: number): Promise<StoredResponse | null>;
  /** False when absent (or another tenant's). */
  delete(tenant: string, id: string): Promise<boolean>;
  /** Remove expired responses; returns how many. */
  purgeExpired(now?: number): Promise<number>;
}
