/** Row shapes shared by the SQLite and Postgres stores, and their mapping to port records. */
import type { ApiKeyRecord, LedgerRecord, NewTenant, TenantRecord } from './ports.js';
import { parseJsonObject, parseStringArray } from './util.js';

export interface TenantRow {
  id: string;
  display_name: string;
  company: string | null;
  industry: string | null;
  system_prompt: string | null;
  prompt_policy: string | null;
  allowed_models: string;
  limits: string | null;
  priority: string;
  source: string;
  created_at: string;
}

export function tenantFromRow(r: TenantRow): TenantRecord {
  return {
    id: r.id,
    display_name: r.display_name,
    company: r.company,
    industry: r.industry,
    system_prompt: r.system_prompt,
    prompt_policy: parseJsonObject(r.prompt_policy),
    allowed_models: parseStringArray(r.allowed_models),
    limits: parseJsonObject(r.limits),
    priority: r.priority,
    source: r.source === 'config' ? 'config' : 'api',
    created_at: r.created_at,
  };
}

/** Column values in TENANT_COLUMNS order. */
export function tenantParams(t: NewTenant, source: string, createdAt: string): (string | null)[] {
  return [
    t.id,
    t.display_name,
    t.company ?? null,
    t.industry ?? null,
    t.system_prompt ?? null,
    t.prompt_policy ? JSON.stringify(t.prompt_policy) : null,
    JSON.stringify(t.allowed_models ?? []),
    t.limits ? JSON.stringify(t.limits) : null,
    t.priority,
    source,
    createdAt,
  ];
}

export const TENANT_COLUMNS = [
  'id',
  'display_name',
  'company',
  'industry',
  'system_prompt',
  'prompt_policy',
  'allowed_models',
  'limits',
  'priority',
  'source',
  'created_at',
] as const;

export interface KeyRow {
  id: string;
  tenant_id: string;
  label: string;
  hash: string;
  prefix: string;
  expires_at: string | null;
  revoked_at: string | null;
  limits: string | null;
  created_at: string;
}

export function keyFromRow(r: KeyRow): ApiKeyRecord {
  return { ...r, limits: parseJsonObject(r.limits) };
}

export const LEDGER_COLUMNS = [
  'id',
  'time',
  'tenant',
  'key_id',
  'model',
  'backend',
  'tokens_in',
  'tokens_out',
  'estimated',
  'cost_usd',
  'latency_ms',
  'status',
  'cache_hit',
  'request_id',
  'partial',
] as const;

export function ledgerParams(r: LedgerRecord): (string | number | boolean | null)[] {
  return [
    r.id,
    Math.round(r.time),
    r.tenant,
    r.key_id,
    r.model,
    r.backend,
    Math.round(r.tokens_in),
    Math.round(r.tokens_out),
    r.estimated,
    r.cost_usd,
    Math.round(r.latency_ms),
    Math.round(r.status),
    r.cache_hit,
    r.request_id,
    r.partial === true,
  ];
}
