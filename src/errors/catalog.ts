/**
 * The one error catalog: code -> HTTP status, OpenAI error type, retryable, and what a person can do.
 * docs/errors.md is generated from this table and a test keeps the two in sync.
 */
export interface CatalogEntry {
  status: number;
  type: string;
  retryable: boolean;
  /** One line for docs/errors.md: when it happens and what to do. */
  doc: string;
}

export const ERROR_CATALOG = {
  invalid_json: {
    status: 400,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'The body is not valid JSON. Send a JSON object with Content-Type: application/json. The message says what is wrong and where (`expected "," or "}" after a property value at line 1, column 58`), never quoting the body.',
  },
  invalid_request: {
    status: 400,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'A field is missing, unknown (admin API bodies: `param` is the unknown field) or has the wrong type or range; `param` names it.',
  },
  max_tokens_exceeded: {
    status: 400,
    type: 'invalid_request_error',
    retryable: false,
    doc: "max_tokens is above the tenant's cap. Lower it or ask an operator to raise the cap.",
  },
  invalid_api_key: {
    status: 401,
    type: 'invalid_request_error',
    retryable: false,
    doc: "No API key, an unknown key, an expired or a revoked key, a key of a tenant this replica's config does not declare (another replica's, during a rolling config change: tenancy.md), or the admin token (it opens /admin/*, not the tenant endpoints; the message says so). Send `Authorization: Bearer <tenant key>`.",
  },
  admin_unauthorized: {
    status: 401,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'The admin API needs `Authorization: Bearer <admin token>`.',
  },
  permission_denied: {
    status: 403,
    type: 'permission_error',
    retryable: false,
    doc: 'The key is valid but may not do this (e.g. a read-only tenant edited through the admin API).',
  },
  not_found: {
    status: 404,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'No such endpoint or resource. For a path under /admin the message points to GET /docs (the admin API reference); otherwise to GET /info, which lists every endpoint a tenant key may call (team routes included). A team route the key may not use is unknown too: the message lists the routes it may use.',
  },
  model_not_found: {
    status: 404,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'The model does not exist or your tenant may not use it. GET /v1/models lists yours.',
  },
  method_not_allowed: {
    status: 405,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'The endpoint exists but not for this HTTP method.',
  },
  conflict: {
    status: 409,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'The resource already exists (e.g. a tenant id in use).',
  },
  request_timeout: {
    status: 408,
    type: 'invalid_request_error',
    retryable: true,
    doc: 'The client did not send the request line and headers within server.headers_timeout_ms, or the whole request within server.body_timeout_ms; the connection is closed. Send the body at once.',
  },
  payload_too_large: {
    status: 413,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'The body is larger than server.body_limit_bytes. Send less or raise the limit.',
  },
  unsupported_media_type: {
    status: 415,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'POST bodies must be JSON: set Content-Type: application/json.',
  },
  headers_too_large: {
    status: 431,
    type: 'invalid_request_error',
    retryable: false,
    doc: "The request's headers are larger than Node's limit (16 KiB by default). Send fewer or shorter headers.",
  },
  rate_limit_exceeded: {
    status: 429,
    type: 'rate_limit_error',
    retryable: true,
    doc: 'A requests/s, tokens/min or in-flight limit was hit. Wait for `retry-after` (seconds) / `retry-after-ms`.',
  },
  insufficient_quota: {
    status: 429,
    type: 'insufficient_quota',
    retryable: false,
    doc: 'The daily or monthly quota is spent (`x-should-retry: false`). It resets at the UTC day/month boundary.',
  },
  client_closed_request: {
    status: 499,
    type: 'invalid_request_error',
    retryable: false,
    doc: 'The client went away before the answer was ready; the upstream call was aborted. Only seen in logs.',
  },
  internal_error: {
    status: 500,
    type: 'api_error',
    retryable: true,
    doc: 'A bug in Portico. The response carries x-request-id: quote it in a report.',
  },
  unsupported_operation: {
    status: 501,
    type: 'invalid_request_error',
    retryable: false,
    doc: "The model's backend cannot do this operation (e.g. rerank on a chat-only provider). For rerank the message names the caller's models that can, or the model's fallbacks that can (fallbacks are not tried for an operation a backend lacks).",
  },
  upstream_error: {
    status: 502,
    type: 'api_error',
    retryable: true,
    doc: 'The backend failed or answered with something Portico could not read. Retry; if it persists, check the backend.',
  },
  upstream_unavailable: {
    status: 503,
    type: 'api_error',
    retryable: true,
    doc: 'The backend is overloaded or down (its 503/529), or no backend of the model is healthy. Retry after `retry-after`.',
  },
  queue_timeout: {
    status: 503,
    type: 'api_error',
    retryable: true,
    doc: "The tenant's in-flight cap was reached and the request waited in the queue past its timeout. Retry after `retry-after`.",
  },
  limits_unavailable: {
    status: 503,
    type: 'api_error',
    retryable: true,
    doc: "Portico's limit store (Redis) is unreachable and `state.redis_failure_mode` is fail_closed, so the request cannot be admitted safely. Retry after `retry-after`; operators: see docs/runbooks/redis-down.md.",
  },
  state_unavailable: {
    status: 503,
    type: 'api_error',
    retryable: true,
    doc: 'The key, tenant and usage store (Postgres; SQLite when embedded) is unreachable or did not answer within `state.postgres.query_timeout_ms`, so a key not cached yet cannot be checked, or an admin call (a change, a listing, a usage report) cannot be served; or `GET /admin/usage` cannot give whole totals: it holds off records the gateway could not write to the ledger store yet (the message says how many). Retry after `retry-after`; operators: see docs/runbooks/postgres-down.md.',
  },
  too_many_connections: {
    status: 503,
    type: 'api_error',
    retryable: true,
    doc: 'This replica holds server.max_connections open connections, or this client IP holds server.max_connections_per_ip. Close idle connections or retry after `retry-after`.',
  },
  draining: {
    status: 503,
    type: 'api_error',
    retryable: true,
    doc: 'This gateway replica is shutting down. Retry; another replica will answer.',
  },
  upstream_timeout: {
    status: 504,
    type: 'api_error',
    retryable: true,
    doc: "The request did not finish within its time limit: a backend attempt's, the model's or the team route's `timeout_ms` (the earliest applies), or `server.request_timeout_ms`. The message names the limit that fired.",
  },
} as const satisfies Record<string, CatalogEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOG;
