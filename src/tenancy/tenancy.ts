/**
 * Tenancy as data: config-declared tenants are synced into the tenant store (read-only there);
 * tenants and keys created through the admin API live only in the store. Authentication looks in
 * the config snapshot first (no I/O), then in the key store through a cache that every replica
 * invalidates on revocation (pub/sub + a polled version).
 */
import { z } from 'zod';
import {
  BudgetSchema,
  QuotaSchema,
  PrioritySchema,
  RATE_LIMIT_BOUNDS,
  type PorticoConfig,
  type Priority,
  type RateLimits,
} from '../config/schema.js';
import type { Snapshot, TenantRuntime } from '../pipeline/snapshot.js';
import type { KeyLookupResult } from '../pipeline/authenticate.js';
import {
  createMemoryBackends,
  createStateBackends,
  defaultDistributedJournalDir,
  type StateBackends,
  type TenantRecord,
  type NewTenant,
  type JsonObject,
} from '../state/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { migrateConfigKeyIds } from './config-key-ids.js';
import { AdmissionQueue } from './priority-queue.js';
import { QuotaCommits } from './quota-commits.js';
import { scopeName, seedFromLedger, type SeedScope } from './quota-seed.js';
import { ReservationLeases } from './reservation-leases.js';

/**
 * Rate limits as the store holds them. The admin API writes only bounded values (RateLimitsSchema),
 * but records written before the bounds are read as they are: refusing one here would drop its
 * whole policy (quota included) and leave the tenant unlimited.
 */
const StoredRateLimitsSchema = z.strictObject({
  requests_per_second: z.number().positive().optional(),
  burst: z.number().int().min(1).optional(),
  tokens_per_minute: z.number().int().min(1).optional(),
  max_in_flight: z.number().int().min(1).optional(),
}) satisfies z.ZodType<RateLimits>;

/** What an API tenant record keeps in its `limits` JSON. */
export const TenantPolicySchema = z.strictObject({
  limits: StoredRateLimitsSchema.optional(),
  quota: QuotaSchema.optional(),
  budget: BudgetSchema.optional(),
  max_tokens_cap: z.number().int().min(1).optional(),
  default_max_tokens: z.number().int().min(1).optional(),
  default_model: z.string().optional(),
});

/** A stored tenant's daily budget in USD (its policy JSON), if it has one. */
export function dailyBudgetOf(rec: TenantRecord): number | undefined {
  const parsed = TenantPolicySchema.safeParse(rec.limits ?? {});
  return parsed.success ? parsed.data.budget?.daily_usd : undefined;
}
export type TenantPolicy = z.infer<typeof TenantPolicySchema>;

export const KeyPolicySchema = z.strictObject({
  limits: StoredRateLimitsSchema.optional(),
  quota: QuotaSchema.optional(),
});

const POLICIES = new Set(['prepend', 'replace', 'none']);

/** A stored limit outside RATE_LIMIT_BOUNDS, and the bound it is enforced at. */
export interface ClampedLimit {
  field: 'requests_per_second' | 'burst' | 'tokens_per_minute';
  stored: number;
  enforced: number;
}

/**
 * Stored limits as enforced: a value outside the schema's bounds (written before the bounds
 * existed) is taken at the bound, which is what such a value means in practice; past it the
 * limiters' arithmetic gives rate-limit headers such as 1e+308 (review, 2026-12-07). What was
 * clamped is pushed to `clamped`; the limits are returned as they are when nothing was.
 */
export function enforcedLimits(
  limits: RateLimits | undefined,
  clamped: ClampedLimit[],
): RateLimits | undefined {
  if (!limits) return limits;
  const rps = RATE_LIMIT_BOUNDS.requests_per_second;
  // The usual case (per request for API keys): in range, nothing allocated.
  if (
    within(limits.requests_per_second, rps.min, rps.max) &&
    within(limits.burst, 1, RATE_LIMIT_BOUNDS.burst) &&
    within(limits.tokens_per_minute, 1, RATE_LIMIT_BOUNDS.tokens_per_minute)
  )
    return limits;
  const out: RateLimits = { ...limits };
  const clamp = (field: ClampedLimit['field'], min: number, max: number): void => {
    const v = out[field];
    if (v === undefined || within(v, min, max)) return;
    const enforced = v < min ? min : max;
    out[field] = enforced;
    clamped.push({ field, stored: v, enforced });
  };
  clamp('requests_per_second', rps.min, rps.max);
  clamp('burst', 1, RATE_LIMIT_BOUNDS.burst);
  clamp('tokens_per_minute', 1, RATE_LIMIT_BOUNDS.tokens_per_minute);
  return out;
}

function within(v: number | undefined, min: number, max: number): boolean {
  return v === undefined || (v >= min && v <= max);
}

/** "limits.requests_per_second 1e+308 (enforced as 1000000), ...". */
function describeClamps(clamped: readonly ClampedLimit[]): string {
  return clamped.map((c) => `limits.${c.field} ${c.stored} (enforced as ${c.enforced})`).join(', ');
}

/** `clamped`: receives the stored limits taken at their bounds (see enforcedLimits). */
export function tenantRuntimeFromRecord(rec: TenantRecord, clamped: ClampedLimit[] = []): TenantRuntime {
  const parsed = TenantPolicySchema.safeParse(rec.limits ?? {});
  const policy = parsed.success ? parsed.data : {};
  const promptPolicy =
    typeof rec.prompt_policy?.policy === 'string' && POLICIES.has(rec.prompt_policy.policy)
      ? (rec.prompt_policy.policy as TenantRuntime['promptPolicy'])
      : 'prepend';
  const priority = PrioritySchema.safeParse(rec.priority);
  return {
    id: rec.id,
    displayName: rec.display_name,
    company: rec.company ?? rec.display_name,
    industry: rec.industry ?? '',
    systemPrompt: rec.system_prompt ?? '',
    promptPolicy,
    // Only "*" means every model, as in the config. An empty list (refused by the admin API, but
    // stored by versions before that) allows none: the tenant is told it has no models.
    allowedModels: rec.allowed_models.includes('*') ? undefined : new Set(rec.allowed_models),
    defaultModel: policy.default_model ?? (rec.allowed_models.find((m) => m !== '*') || undefined),
    maxTokensCap: policy.max_tokens_cap,
    defaultMaxTokens: policy.default_max_tokens,
    source: rec.source,
    limits: enforcedLimits(policy.limits, clamped),
    quota: policy.quota,
    priority: priority.success ? priority.data : 'normal',
  };
}

export function tenantRecordFromConfig(t: PorticoConfig['tenants'][number], prompt: string): NewTenant {
  const policy: TenantPolicy = {};
  if (t.limits) policy.limits = t.limits;
  if (t.quota) policy.quota = t.quota;
  if (t.budget) policy.budget = t.budget;
  if (t.max_tokens_cap) policy.max_tokens_cap = t.max_tokens_cap;
  if (t.default_max_tokens) policy.default_max_tokens = t.default_max_tokens;
  if (t.default_model) policy.default_model = t.default_model;
  return {
    id: t.id,
    display_name: t.display_name ?? t.id,
    company: t.company ?? null,
    industry: t.industry ?? null,
    system_prompt: prompt,
    prompt_policy: { policy: t.prompt_policy },
    allowed_models: t.allowed_models,
    limits: policy as JsonObject,
    priority: t.priority,
    source: 'config',
  };
}

/**
 * The quota scopes of a config snapshot that have a quota now and had none in `prev` (all of them
 * when there is no `prev`): config tenants, and config keys by their tenant and id.
 */
export function gainedQuotaScopes(prev: Snapshot | undefined, next: Snapshot): SeedScope[] {
  const out: SeedScope[] = [];
  for (const [id, t] of next.tenants) if (t.quota && !prev?.tenants.get(id)?.quota) out.push({ tenant: id });
  const before = new Set<string>();
  if (prev) for (const k of prev.keys.values()) if (k.quota) before.add(`${k.tenantId}\u0000${k.keyId}`);
  for (const k of next.keys.values())
    if (k.quota && !before.has(`${k.tenantId}\u0000${k.keyId}`))
      out.push({ tenant: k.tenantId, keyId: k.keyId });
  return out;
}

export class Tenancy {
  readonly state: StateBackends;
  readonly queue: AdmissionQueue;
  /** The quota reservations this replica holds (their owner id and lease renewal). */
  readonly reservations: ReservationLeases;
  /** Quota commits, retried while the store refuses them (quota-commits.ts). */
  readonly quotaCommits: QuotaCommits;
  #apiTenants = new Map<string, { rec: TenantRecord; rt: TenantRuntime }>();
  /** This replica's config tenants as last synced (restoreConfigTenant puts one back). */
  #configRecords = new Map<string, NewTenant>();
  /** Reports how many undeclared config tenants the last sync kept for their API keys. */
  #onRetained: (n: number) => void = () => undefined;
  /** Per tenant or key with stored limits outside their bounds: what was last warned about. */
  #clampWarned = new Map<string, string>();
  #logger: Logger;

  private constructor(
    state: StateBackends,
    queue: AdmissionQueue,
    reservations: ReservationLeases,
    quotaCommits: QuotaCommits,
    logger: Logger,
  ) {
    this.state = state;
    this.queue = queue;
    this.reservations = reservations;
    this.quotaCommits = quotaCommits;
    this.#logger = logger;
  }

  /**
   * One warning per tenant or key whose stored limits were taken at their bounds (again only if
   * the stored values change): records are re-read on every invalidation, the warning is not.
   */
  #warnClamped(tenant: string, key: string | undefined, clamped: readonly ClampedLimit[]): void {
    // The common case (per request for API keys): nothing clamped, nothing ever warned.
    if (clamped.length === 0 && this.#clampWarned.size === 0) return;
    const id = key === undefined ? `tenant:${tenant}` : `key:${key}`;
    if (clamped.length === 0) {
      this.#clampWarned.delete(id);
      return;
    }
    const what = describeClamps(clamped);
    if (this.#clampWarned.get(id) === what) return;
    this.#clampWarned.set(id, what);
    const owner = key === undefined ? `tenant ${tenant}` : `key ${key} of tenant ${tenant}`;
    this.#logger.warn(
      { tenant, ...(key === undefined ? {} : { key }), limits: clamped },
      `stored rate limits of ${owner} are outside their bounds: ${what}; set them again through the admin API`,
    );
  }

  static async create(
    cfg: PorticoConfig,
    deps: { logger: Logger; metrics: GatewayMetrics },
  ): Promise<Tenancy> {
    const hooks = {
      onError: (e: { store: string; mode: string }) => deps.metrics.stateErrors.labels(e.store, e.mode).inc(),
      onBackendUp: (store: string, up: boolean) => deps.metrics.stateUp.labels(store).set(up ? 1 : 0),
      onLedgerLost: (records: number) => deps.metrics.ledgerDropped.inc(records),
    };
    const logger = {
      warn: (o: object, m: string) => deps.logger.warn(o, m),
      error: (o: object, m: string) => deps.logger.error(o, m),
    };
    const s = cfg.state;
    const state =
      s.kind === 'memory'
        ? createMemoryBackends({ logger, hooks })
        : await createStateBackends(
            s.kind === 'embedded'
              ? {
                  kind: 'embedded',
                  data_dir: s.data_dir,
                  ...(s.journal_dir !== undefined ? { journal_dir: s.journal_dir } : {}),
                }
              : {
                  kind: 'distributed',
                  ...(s.journal_dir === undefined ? { journal_dir_defaulted: true } : {}),
                  journal_dir:
                    s.journal_dir ??
                    defaultDistributedJournalDir({
                      postgresUrl: s.postgres.url,
                      schema: s.postgres.schema,
                      redisUrl: s.redis.url,
                      keyPrefix: s.redis.key_prefix,
                    }),
                  redis: {
                    url: s.redis.url,
                    ...(s.redis.key_prefix !== undefined ? { key_prefix: s.redis.key_prefix } : {}),
                  },
                  postgres: {
                    url: s.postgres.url,
                    ...(s.postgres.schema !== undefined ? { schema: s.postgres.schema } : {}),
                    query_timeout_ms: s.postgres.query_timeout_ms,
                    connect_timeout_ms: s.postgres.connect_timeout_ms,
                  },
                  redis_failure_mode: s.redis_failure_mode,
                },
            { logger, hooks, exclusive: true },
          );
    const reservations = new ReservationLeases(
      state.quotas,
      deps.logger,
      cfg.admission.reservation_lease_ms,
      {
        onLapsed: (tenant) => deps.metrics.leaseLapses.labels(tenant, 'quota').inc(),
      },
    );
    if (s.kind === 'embedded' && state.quotas.releaseOthers) {
      // One gateway writes an embedded store: what is still held was held by an earlier process of
      // it (killed before it could settle). Give it back now rather than after the lease.
      const released = await state.quotas.releaseOthers(reservations.owner);
      if (released > 0)
        deps.logger.warn(
          { released },
          'released quota reservations held by an earlier gateway process that did not shut down cleanly',
        );
    }
    // Config keys without `id:` were named by their place in the list before; their quota usage in
    // the current windows moves to the ids derived from the keys (config-key-ids.ts).
    const migration = await migrateConfigKeyIds(state.quotas, cfg.tenants);
    for (const m of migration.moved)
      deps.logger.info(
        { tenant: m.tenant, from: m.from, to: m.to, moved: m.moved },
        'moved a config key quota usage from its positional id to its derived id (ledger rows keep the old id)',
      );
    for (const f of migration.failed)
      deps.logger.error(
        f,
        'could not move a config key quota usage from its positional id to its derived id; it stays under the old id until a later start moves it',
      );
    const quotaCommits = new QuotaCommits(state.quotas, deps.logger, {
      onOwed: (n) => deps.metrics.quotaCommitsOwed.set(n),
      onAbandoned: () => deps.metrics.quotaCommitsAbandoned.inc(),
    });
    const t = new Tenancy(
      state,
      new AdmissionQueue({ maxQueue: cfg.admission.max_queue }),
      reservations,
      quotaCommits,
      deps.logger,
    );
    state.bus.subscribe(() => t.#apiTenants.clear());
    t.#onRetained = (n) => deps.metrics.configTenantsRetained.set(n);
    return t;
  }

  /**
   * The config's tenants whose id is a tenant created through the admin API, as config problems
   * (path `tenants[i].id`). Such a config is refused, at start and on reload: taking the tenant
   * over would drop its policy and prompt, and a later config without the entry would delete it
   * with its keys (review, 2026-12: both happened silently).
   */
  async configConflicts(config: PorticoConfig): Promise<Array<{ path: string; message: string }>> {
    if (config.tenants.length === 0) return [];
    const api = new Set((await this.state.tenants.list()).filter((r) => r.source === 'api').map((r) => r.id));
    const out: Array<{ path: string; message: string }> = [];
    config.tenants.forEach((t, i) => {
      if (!api.has(t.id)) return;
      out.push({
        path: `tenants[${i}].id`,
        message: `tenant "${t.id}" already exists as a tenant created through the admin API (its keys, policy and prompt are in the tenant store), and a config entry cannot take it over. Give this entry another id, or delete the API tenant first (DELETE /admin/tenants/${t.id} or the console; its API keys go with it) and declare it here`,
      });
    });
    return out;
  }

  /**
   * Count the ledger's usage of the current day and month in the quota counters of these scopes,
   * which have just gained a quota (quota-seed.ts: never lowers a counter). Logs what it raised.
   */
  async seedQuotaUsage(scopes: readonly SeedScope[], countCacheHitTokens: boolean): Promise<void> {
    const raised = await seedFromLedger(
      {
        ledger: this.state.ledger,
        quotas: this.state.quotas,
        flushLedger: () => this.state.ledgerWriter.flush(),
      },
      scopes,
      countCacheHitTokens,
    );
    for (const r of raised)
      this.#logger.info(
        {
          tenant: r.scope.tenant,
          ...(r.scope.keyId !== undefined ? { key: r.scope.keyId } : {}),
          added: r.added,
        },
        'a new quota counts the usage the ledger holds for the current day and month',
      );
  }

  /**
   * At start: every quota scope of the config, and every API tenant with a quota (one that an
   * earlier version set mid-day, or that was set while the counters could not be seeded).
   */
  async startupQuotaScopes(snapshot: Snapshot): Promise<SeedScope[]> {
    const scopes = gainedQuotaScopes(undefined, snapshot);
    for (const rec of await this.state.tenants.list()) {
      if (rec.source !== 'api') continue;
      const policy = TenantPolicySchema.safeParse(rec.limits ?? {});
      if (policy.success && policy.data.quota) scopes.push({ tenant: rec.id });
    }
    // Only the scopes whose counters have nothing this month: the others have been counting (a
    // restart keeps them), and reading the month's ledger for them would make every start scan it —
    // millions of rows on a busy gateway. A scope that gained its quota while the gateway was down
    // has no counter yet, and is seeded with a query of its own tenant's rows.
    const uncounted: SeedScope[] = [];
    for (const s of scopes) {
      const u = await this.state.quotas.usage(s.tenant, scopeName(s), 'month');
      if (u.usedTokens === 0 && u.usedRequests === 0) uncounted.push(s);
    }
    return uncounted;
  }

  /**
   * Make the store's config-sourced tenants match the config (called at start and on reload).
   * Replicas share the store and may run different configs for a while (a rolling update, a
   * rollback, an old pod restarting): a config tenant this config does not declare is deleted only
   * if it has no API keys. One with keys is kept (a warning per sync, and the
   * portico_config_tenants_retained gauge): the replica that declares it serves it, this one refuses
   * its keys, and the operator deletes it through the admin API once it is gone for good.
   */
  async syncConfig(snapshot: Snapshot, prompts: ReadonlyMap<string, string>): Promise<void> {
    this.reservations.configure(snapshot.config.admission.reservation_lease_ms);
    this.queue.configure(snapshot.config.admission.max_queue);
    const records = snapshot.config.tenants.map((t) => tenantRecordFromConfig(t, prompts.get(t.id) ?? ''));
    this.#configRecords = new Map(records.map((r) => [r.id, r]));
    const out = await this.state.tenants.syncFromConfig(records);
    this.#onRetained(out.retained.length);
    if (out.removed.length > 0)
      this.#logger.info(
        { tenants: out.removed },
        `config tenants this config no longer declares were removed from the tenant store (they had no API keys): ${out.removed.join(', ')}`,
      );
    for (const id of out.retained)
      this.#logger.warn(
        { tenant: id },
        `config tenant "${id}" is not declared in this replica's config, but it has API keys, which a config sync never deletes: it stays in the tenant store and this replica refuses its keys. ` +
          `If another replica's config still declares it (a rolling update or rollback), nothing needs doing. If it was removed for good, delete it, and its API keys with it, with DELETE /admin/tenants/${id}`,
      );
  }

  /**
   * Put this replica's config tenant `id` back into the store if another replica's sync removed it
   * (it had no API keys, and that replica's config does not declare it). Only an upsert: nothing
   * else changes. Undefined when this replica's config does not declare `id`.
   */
  async restoreConfigTenant(id: string, snapshot: Snapshot): Promise<TenantRecord | undefined> {
    const rec = snapshot.tenants.has(id) ? this.#configRecords.get(id) : undefined;
    if (!rec) return undefined;
    await this.state.tenants.syncFromConfig([rec], { prune: false });
    this.#logger.warn(
      { tenant: id },
      `config tenant "${id}" was missing from the tenant store (removed by a replica whose config does not declare it); restored from this replica's config`,
    );
    return (await this.state.tenants.get(id)) ?? undefined;
  }

  /**
   * The tenant `id` as this replica serves it: its config entry, or an API tenant from the store. A
   * config-sourced record this replica's config does not declare (another replica's, or one kept
   * for its API keys: syncConfig) is no tenant here.
   */
  async tenant(id: string, snapshot: Snapshot): Promise<TenantRuntime | undefined> {
    const fromConfig = snapshot.tenants.get(id);
    if (fromConfig) return fromConfig;
    const rec = await this.state.tenantResolver.get(id);
    if (!rec || rec.source === 'config') return undefined;
    const cached = this.#apiTenants.get(id);
    if (cached && cached.rec === rec) return cached.rt;
    const clamped: ClampedLimit[] = [];
    const rt = tenantRuntimeFromRecord(rec, clamped);
    this.#warnClamped(id, undefined, clamped);
    this.#apiTenants.set(id, { rec, rt });
    return rt;
  }

  /** Keys created through the admin API (config keys are found in the snapshot before this runs). */
  async lookupKey(plaintext: string, snapshot: Snapshot): Promise<KeyLookupResult> {
    const r = await this.state.keyResolver.resolve(plaintext);
    if (!r.ok) {
      if (r.reason === 'revoked')
        return { rejected: 'This API key was revoked. Ask your Portico operator for a new one.' };
      if (r.reason === 'expired')
        return {
          rejected: `This API key expired at ${r.key?.expires_at ?? 'an earlier time'}. Ask your Portico operator for a new one.`,
        };
      return undefined;
    }
    const tenant = await this.tenant(r.key.tenant_id, snapshot);
    if (!tenant) {
      // A config tenant kept for its keys but not declared here (syncConfig): a config matter.
      if ((await this.state.tenantResolver.get(r.key.tenant_id))?.source === 'config')
        return {
          rejected:
            "This API key belongs to a tenant this gateway's config does not declare (removed from the config file, or this replica still runs an older one). Ask your Portico operator.",
        };
      return { rejected: 'This API key belongs to a tenant that no longer exists.' };
    }
    const policy = KeyPolicySchema.safeParse(r.key.limits ?? {});
    const clamped: ClampedLimit[] = [];
    const limits = policy.success ? enforcedLimits(policy.data.limits, clamped) : undefined;
    this.#warnClamped(r.key.tenant_id, r.key.id, clamped);
    return {
      tenant,
      entry: {
        tenantId: r.key.tenant_id,
        keyId: r.key.id,
        label: r.key.label,
        hash: '',
        limits,
        quota: policy.success ? policy.data.quota : undefined,
      },
    };
  }

  async close(): Promise<void> {
    this.reservations.close();
    this.queue.close();
    // Before the stores close: what is still owed stays in the ledger journal for the next start.
    this.quotaCommits.close();
    await this.state.close();
  }
}

export type { Priority };
