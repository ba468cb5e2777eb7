/**
 * Anthropic error responses -> the Portico error catalog.
 * https://docs.anthropic.com/en/api/errors
 */
import type { ErrorCode } from '../../errors/catalog.js';
import { PorticoError } from '../../errors/portico-error.js';
import { parseRetryAfterMs } from '../openai-compatible/map-error.js';

/** Reads `{type:'error', error:{type, message}}`; tolerant of anything else. */
export function readAnthropicError(body: unknown): { type: string | undefined; message: string | undefined } {
  if (typeof body === 'object' && body !== null) {
    const e = (body as { error?: unknown }).error;
    if (typeof e === 'object' && e !== null) {
      const t = (e as { type?: unknown }).type;
      const m = (e as { message?: unknown }).message;
      return { type: typeof t === 'string' ? t : undefined, message: typeof m === 'string' ? m : undefined };
    }
  }
  return { type: undefined, message: undefined };
}

function codeFor(status: number, type: string | undefined): ErrorCode {
  switch (type) {
    case 'invalid_request_error':
      return status === 413 ? 'payload_too_large' : 'invalid_request';
    case 'authentication_error':
    case 'permission_error':
    case 'billing_error':
      return 'upstream_error';
    case 'not_found_error':
      return 'model_not_found';
    case 'request_too_large':
      return 'payload_too_large';
    case 'rate_limit_error':
      return 'rate_limit_exceeded';
    case 'overloaded_error':
      return 'upstream_unavailable';
    case 'timeout_error':
      return 'upstream_timeout';
    case 'api_error':
      return 'upstream_error';
    default:
      break;
  }
  if (status === 400 || status === 422) return 'invalid_request';
  if (status === 404) return 'model_not_found';
  if (status === 413) return 'payload_too_large';
  if (status === 429) return 'rate_limit_exceeded';
  if (status === 503 || status === 529) return 'upstream_unavailable';
  if (status === 504) return 'upstream_timeout';
  return 'upstream_error';
}

/**
 * Maps an upstream error. 401/403 from the upstream mean the operator's key or account is wrong,
 * not the client's: they become 502 upstream_error with a message saying so (the client's own
 * key was fine). 429 keeps retry-after; 529 overloaded becomes 503. `upstream` carries the real
 * status and retry-after hint: dispatch decides retries and the circuit breaker from it.
 */
export function mapAnthropicError(
  status: number,
  body: unknown,
  headers: Record<string, string | string[] | undefined> = {},
  backendId = 'anthropic',
): PorticoError {
  const { type, message } = readAnthropicError(body);
  const code = codeFor(status, type);
  const upstreamMsg =
    message ?? (typeof body === 'string' && body !== '' ? body.slice(0, 500) : `HTTP ${status}`);
  let text: string;
  if (status === 401 || type === 'authentication_error') {
    text = `Backend '${backendId}' rejected Portico's credentials (upstream 401: ${upstreamMsg}). An operator must fix the backend api_key.`;
  } else if (status === 403 || type === 'permission_error' || type === 'billing_error') {
    text = `Backend '${backendId}' refused the request (upstream ${status}: ${upstreamMsg}). An operator must check the backend account.`;
  } else if (code === 'model_not_found') {
    text = `Backend '${backendId}' does not know the model: ${upstreamMsg}`;
  } else {
    text = `Backend '${backendId}': ${upstreamMsg}`;
  }
  const outHeaders: Record<string, string> = {};
  const ra = headers['retry-after'];
  const retryAfter = Array.isArray(ra) ? ra[0] : ra;
  if (retryAfter !== undefined && (code === 'rate_limit_exceeded' || code === 'upstream_unavailable')) {
    outHeaders['retry-after'] = retryAfter;
    const secs = Number(retryAfter);
    if (Number.isFinite(secs)) outHeaders['retry-after-ms'] = String(Math.round(secs * 1000));
  }
  const retryAfterMs =
    parseRetryAfterMs(headers['retry-after-ms']) ?? parseRetryAfterMs(headers['retry-after']);
  return new PorticoError(code, text, {
    headers: outHeaders,
    cause: { status, body },
    upstream: {
      backend: backendId,
      class: 'status',
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    },
  });
}

/**
 * An `event: error` inside a stream (status already 200): the status its type stands for, so that
 * dispatch treats it as that answer (retry before the first chunk, circuit breaker).
 */
export function mapAnthropicStreamError(data: unknown, backendId = 'anthropic'): PorticoError {
  const { type } = readAnthropicError(data);
  const status =
    type === 'overloaded_error'
      ? 529
      : type === 'rate_limit_error'
        ? 429
        : type === 'invalid_request_error'
          ? 400
          : 500;
  return mapAnthropicError(status, data, {}, backendId);
}
