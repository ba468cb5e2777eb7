/**
 * Tenancy as data: config-declared tenants are synced into the tenant store (read-only there);
 * tenants and keys created through the admin API live only in the store. Authentication looks in
 * the config snapshot first (no I/O), then in the key store through a cache that every replica
 * invalidates on revocation (pub/sub + a polled version).
 */
import { z } from 'zod';
import {
  QuotaSchema,
  PrioritySchema,
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
  max_tokens_cap: z.number().int().min(1).optional(),
  default_max_tokens: z.number().int().min(1).optional(),
  default_model: z.string().optional(),
});
export type TenantPolicy = z.infer<typeof TenantPolicySchema>;

export const KeyPolicySchema = z.strictObject({
  limits: StoredRateLimitsSchema.optional(),
  quota: QuotaSchema.optional(),
});

const POLICIES = new Set(['prepend', 'replace', 'none']);

export function tenantRuntimeFromRecord(rec: TenantRecord): TenantRuntime {
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
    limits: policy.limits,
    quota: policy.quota,
    priority: priority.success ? priority.data : 'normal',
  };
}

export function tenantRecordFromConfig(t: PorticoConfig['tenants'][number], prompt: string): NewTenant {
  const policy: TenantPolicy = {};
  if (t.limits) policy.limits = t.limits;
  if (t.quota) policy.quota = t.quota;
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

export class Tenancy {
  readonly state: StateBackends;
  readonly queue: AdmissionQueue;
  /** The quota reservations this replica holds (their owner id and lease renewal). */
  readonly reservations: ReservationLeases;
  /** Quota commits, retried while the store refuses them (quota-commits.ts). */
  readonly quotaCommits: QuotaCommits;
  #apiTenants = new Map<string, { rec: TenantRecord; rt: TenantRuntime }>();

  private constructor(
    state: StateBackends,
    queue: AdmissionQueue,
    reservations: ReservationLeases,
    quotaCommits: QuotaCommits,
  ) {
    this.state = state;
    this.queue = queue;
    this.reservations = reservations;
    this.quotaCommits = quotaCommits;
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
                  },
                  redis_failure_mode: s.redis_failure_mode,
                },
            { logger, hooks, exclusive: true },
          );
    const reservations = new ReservationLeases(state.quotas, deps.logger, cfg.admission.reservation_lease_ms);
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
    );
    state.bus.subscribe(() => t.#apiTenants.clear());
    return t;
  }

  /** Make the store's config-sourced tenants match the config (called at start and on reload). */
  async syncConfig(snapshot: Snapshot, prompts: ReadonlyMap<string, string>): Promise<void> {
    this.reservations.configure(snapshot.config.admission.reservation_lease_ms);
    this.queue.configure(snapshot.config.admission.max_queue);
    await this.state.tenants.syncFromConfig(
      snapshot.config.tenants.map((t) => tenantRecordFromConfig(t, prompts.get(t.id) ?? '')),
    );
  }

  async tenant(id: string, snapshot: Snapshot): Promise<TenantRuntime | undefined> {
    const fromConfig = snapshot.tenants.get(id);
    if (fromConfig) return fromConfig;
    const rec = await this.state.tenantResolver.get(id);
    if (!rec) return undefined;
    const cached = this.#apiTenants.get(id);
    if (cached && cached.rec === rec) return cached.rt;
    const rt = tenantRuntimeFromRecord(rec);
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
    if (!tenant) return { rejected: 'This API key belongs to a tenant that no longer exists.' };
    const policy = KeyPolicySchema.safeParse(r.key.limits ?? {});
    return {
      tenant,
      entry: {
        tenantId: r.key.tenant_id,
        keyId: r.key.id,
        label: r.key.label,
        hash: '',
        limits: policy.success ? policy.data.limits : undefined,
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
