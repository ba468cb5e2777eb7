/** The admin API client: the token lives in sessionStorage only; every call sends it as a Bearer token. */
import { createParser } from 'eventsource-parser';
// The admin API's shapes come from the server's own declarations (src/http/wire.ts).
import type { RequestRecord, StatsRow, StatsSnapshot } from '../../src/http/wire.js';

export type { RequestRecord, StatsRow };
export type Stats = StatsSnapshot;

const TOKEN_KEY = 'portico.adminToken';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}
export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    /** The failed request's x-request-id (its details are in the request log). */
    readonly requestId: string | null = null,
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let param: string | null = null;
  try {
    const body = (await res.json()) as { error?: { message?: string; param?: string | null } };
    if (body.error?.message) message = body.error.message;
    param = body.error?.param ?? null;
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, message, param, res.headers.get('x-request-id'));
}

export async function api<T>(method: string, path: string, body?: unknown, token = getToken()): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${token ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export interface StreamEvents {
  onDelta: (text: string) => void;
  onUsage: (usage: Usage) => void;
}

/** POST /admin/playground and read the SSE stream; resolves with the request id when it ends. */
export async function streamPlayground(
  body: { tenant: string; model?: string; question: string; max_tokens?: number; user?: string },
  ev: StreamEvents,
  signal?: AbortSignal,
): Promise<{ requestId: string; variant: string | null; firstByteMs: number | null }> {
  const started = performance.now();
  const res = await fetch('/admin/playground', {
    method: 'POST',
    headers: { authorization: `Bearer ${getToken() ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  if (!res.ok || !res.body) throw await errorOf(res);
  const requestId = res.headers.get('x-request-id') ?? '';
  const variant = res.headers.get('x-portico-variant');
  let firstByteMs: number | null = null;
  let failure: ApiError | undefined;
  const parser = createParser({
    onEvent(e) {
      if (e.data === '[DONE]') return;
      const chunk = JSON.parse(e.data) as {
        choices?: Array<{ delta?: { content?: string | null } }>;
        usage?: Usage | null;
        error?: { message: string };
      };
      if (chunk.error) {
        failure = new ApiError(502, chunk.error.message, null, requestId);
        return;
      }
      const text = chunk.choices?.[0]?.delta?.content;
      if (text) {
        firstByteMs ??= performance.now() - started;
        ev.onDelta(text);
      }
      if (chunk.usage) ev.onUsage(chunk.usage);
    },
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.feed(value);
  }
  if (failure) throw failure;
  return { requestId, variant, firstByteMs };
}

// ---- response shapes (see docs/admin-api.md) ----

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface RateLimits {
  requests_per_second?: number;
  burst?: number;
  tokens_per_minute?: number;
  max_in_flight?: number;
}
export interface Quota {
  daily_tokens?: number;
  monthly_tokens?: number;
  daily_requests?: number;
  monthly_requests?: number;
}
export interface QuotaUse {
  windowId: string;
  usedTokens: number;
  usedRequests: number;
  reservedTokens: number;
  reservedRequests: number;
  resetAt: number;
  limitTokens: number | null;
  limitRequests: number | null;
  /** quota: the quota's counters; ledger: no quota, the usage ledger's figures. */
  source: 'quota' | 'ledger';
}
export interface Tenant {
  id: string;
  display_name: string;
  company: string | null;
  industry: string | null;
  system_prompt: string;
  prompt_policy: string;
  allowed_models: string[];
  limits: RateLimits | null;
  quota: Quota | null;
  max_tokens_cap: number | null;
  default_model: string | null;
  priority: string;
  source: 'config' | 'api';
  read_only: boolean;
  created_at: string;
  usage?: { day: QuotaUse; month: QuotaUse };
}
export interface Key {
  id: string;
  tenant_id: string;
  label: string;
  prefix: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string | null;
  source: 'config' | 'api';
}
export interface UsageRow {
  tenant: string;
  group: string;
  requests: number;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  estimated: number;
  /** Requests cut short (cancelled or broken-off streams), billed for what was delivered. */
  partial: number;
}
export interface ModelInfo {
  id: string;
  strategy: string | null;
  /** A/B split alias: its variants (other model aliases) and weights. */
  split?: Array<{ model: string; weight: number }> | null;
  pricing: { input_per_million: number; output_per_million: number } | null;
  /** The model aliases tried when every backend of this one fails, in order. */
  fallbacks?: string[];
  /** This alias, then its fallbacks (those with backends): the order requests try them. */
  chain?: string[];
  /** Who answers now; null when no backend of the chain can take a request. */
  serving?: Serving | null;
  /** Aliases that fall back to this one. */
  fallback_for?: string[];
  /** A split alias: each variant's weight, chain and who answers it (null for other aliases). */
  variants?: Array<{ model: string; weight: number; chain: string[]; serving: Serving | null }> | null;
  backends: Array<{
    id: string;
    provider: string;
    model: string;
    weight: number;
    healthy: boolean;
    in_flight: number;
    /** HTTP backends: upstream sockets open now (null for in-process sim and engine). */
    upstream_connections?: number | null;
    last_error: string | null;
    /** From the routing layer, where the gateway has it (circuit breaker, health checks). */
    state?: 'healthy' | 'ejected' | 'open' | 'half_open';
    reason?: string | null;
    circuit?: {
      state: string;
      consecutive_failures: number;
      opened_at: string | null;
      retry_at: string | null;
    };
    latency_ewma_ms?: number | null;
    last_error_at?: string | null;
  }>;
}
export interface Serving {
  /** The alias of the chain that answers: this one, or a fallback. */
  model: string;
  backends: string[];
  fallback: boolean;
  /** Only backends ejected by health checks remain; they are still tried. */
  degraded: boolean;
}
export interface List<T> {
  data: T[];
}
