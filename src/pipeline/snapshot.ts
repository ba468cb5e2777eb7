/**
 * An immutable, compiled view of one config version: tenants, their key hashes, model pools.
 * Hot reload builds a new snapshot and swaps it atomically; requests in flight keep the one
 * they started with.
 */
import type { LoadedConfig } from '../config/load.js';
import type {
  CachePolicy,
  PorticoConfig,
  Priority,
  Quota,
  RateLimits,
  TenantConfig,
} from '../config/schema.js';
import { configKeyDigest, configKeyId } from '../config/key-ids.js';
import type { Pool } from '../routing/pool.js';

export interface TenantRuntime {
  readonly id: string;
  readonly displayName: string;
  readonly company: string;
  readonly industry: string;
  readonly systemPrompt: string;
  readonly promptPolicy: TenantConfig['prompt_policy'];
  /** undefined = every model */
  readonly allowedModels: ReadonlySet<string> | undefined;
  readonly defaultModel: string | undefined;
  readonly maxTokensCap: number | undefined;
  readonly defaultMaxTokens: number | undefined;
  readonly source: 'config' | 'api';
  readonly limits: RateLimits | undefined;
  readonly quota: Quota | undefined;
  readonly priority: Priority;
  /** Response-cache policy from the tenant's config entry (API tenants use the defaults). */
  readonly cache?: CachePolicy | undefined;
  /** Replace PII in prompts before they go upstream. */
  readonly redactPiiUpstream?: boolean;
}

export interface KeyEntry {
  readonly tenantId: string;
  readonly keyId: string;
  readonly label: string;
  /** sha256 hex of the key */
  readonly hash: string;
  readonly limits?: RateLimits | undefined;
  readonly quota?: Quota | undefined;
}

export interface Snapshot {
  readonly version: number;
  readonly loadedAt: Date;
  readonly config: PorticoConfig;
  readonly tenants: ReadonlyMap<string, TenantRuntime>;
  readonly keys: ReadonlyMap<string, KeyEntry>;
  readonly pools: ReadonlyMap<string, Pool>;
}

export function compileTenant(t: TenantConfig, prompt: string, models: readonly string[]): TenantRuntime {
  const all = t.allowed_models.includes('*');
  const allowed = all ? undefined : new Set(t.allowed_models);
  const defaultModel =
    (t.default_model ?? (all ? (models.includes('default') ? 'default' : models[0]) : t.allowed_models[0])) ||
    undefined;
  return {
    id: t.id,
    displayName: t.display_name ?? t.id,
    company: t.company ?? t.display_name ?? t.id,
    industry: t.industry ?? '',
    systemPrompt: prompt,
    promptPolicy: t.prompt_policy,
    allowedModels: allowed,
    defaultModel,
    maxTokensCap: t.max_tokens_cap,
    defaultMaxTokens: t.default_max_tokens,
    source: 'config',
    limits: t.limits,
    quota: t.quota,
    priority: t.priority,
    cache: t.cache,
    redactPiiUpstream: t.redact_pii_upstream,
  };
}

export function compileSnapshot(loaded: LoadedConfig, pools: Map<string, Pool>, version: number): Snapshot {
  const cfg = loaded.config;
  const models = Object.keys(cfg.models);
  const tenants = new Map<string, TenantRuntime>();
  const keys = new Map<string, KeyEntry>();
  for (const t of cfg.tenants) {
    tenants.set(t.id, compileTenant(t, loaded.prompts.get(t.id) ?? '', models));
    for (const k of t.api_keys) {
      const hash = configKeyDigest(k);
      keys.set(hash, {
        tenantId: t.id,
        keyId: configKeyId(t.id, k.id, hash),
        label: k.label ?? '',
        hash,
        limits: k.limits,
        quota: k.quota,
      });
    }
  }
  return { version, loadedAt: new Date(), config: cfg, tenants, keys, pools };
}
