/**
 * Wire shapes of the admin API that the web console reads (GET /admin/requests, GET /admin/stats).
 * Dependency-free on purpose: the server builds them and the console (console/src/api.ts) imports
 * the same declarations as types, so the two cannot drift apart.
 */

export interface RequestRecord {
  request_id: string;
  correlation_id: string;
  /** ISO 8601 (formatted when read: the hot path stores epoch ms in `at`). */
  time: string;
  tenant: string | null;
  key_id: string | null;
  model: string | null;
  /** A/B split: the variant alias that served the request. */
  variant: string | null;
  backend: string | null;
  /** The fallback model alias that answered, when the requested model's own backends could not. */
  fallback_model: string | null;
  route: string;
  endpoint: string;
  status: number;
  stream: boolean;
  latency_ms: number;
  ttft_ms: number | null;
  tokens_in: number;
  tokens_out: number;
  tokens_estimated: boolean;
  /** The answer was cut short (a stream cancelled by the client or broken off upstream): billed for what was delivered. */
  partial: boolean;
  cost_usd: number;
  cache_hit: string | null;
  /** Why it failed (status >= 400, or a stream that broke mid-way): the client's error code and message. */
  error: RequestError | null;
  request_body?: string;
  response_body?: string;
}

export interface RequestError {
  code: string;
  message: string;
}

export interface StatsRow {
  requests: number;
  rps: number;
  errors: number;
  error_rate: number;
  p50_ms: number | null;
  p95_ms: number | null;
  mean_ms: number | null;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
}

export interface StatsSnapshot {
  object: 'stats';
  now: number;
  window_s: number;
  step_s: number;
  totals: StatsRow;
  by_tenant: Array<StatsRow & { tenant: string }>;
  by_model: Array<StatsRow & { model: string }>;
  by_backend: Array<StatsRow & { backend: string }>;
  /** Oldest first; `t` is the start of each step (epoch ms). */
  series: Array<{
    t: number;
    rps: number;
    error_rate: number;
    p50_ms: number | null;
    p95_ms: number | null;
    tokens: number;
  }>;
}
