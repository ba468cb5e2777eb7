/** Upstream HTTP failures of an OpenAI-compatible server, mapped to the error catalog. */
import { PorticoError } from '../../errors/portico-error.js';
import type { ErrorCode } from '../../errors/catalog.js';

/** `retry-after` (RFC 9110: seconds or an HTTP date) in ms. */
export function parseRetryAfterMs(
  value: string | string[] | undefined,
  now = Date.now(),
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === '') return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, Math.round(secs * 1000));
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** `retry-after-ms` (OpenAI's, also sent by some proxies): milliseconds, not seconds. */
function parseRetryAfterMsHeader(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  const ms = Number(v);
  return Number.isFinite(ms) ? Math.max(0, Math.round(ms)) : undefined;
}

/**
 * The `param` and `code` of an OpenAI-shaped error body ({"error":{"param","code"}}), kept on a
 * passed-through 400 so the client learns which field was wrong and why (SDKs branch on `code`,
 * e.g. `context_length_exceeded`). Only short strings are taken: an upstream cannot inject a body.
 */
export function upstreamErrorFields(bodyText: string): { param?: string; code?: string } {
  let j: unknown;
  try {
    j = JSON.parse(bodyText);
  } catch {
    return {};
  }
  const e = j && typeof j === 'object' ? (j as { error?: unknown }).error : undefined;
  if (!e || typeof e !== 'object') return {};
  const { param, code } = e as { param?: unknown; code?: unknown };
  const ok = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200;
  return { ...(ok(param) ? { param } : {}), ...(ok(code) ? { code } : {}) };
}

/** Extract a human message from an upstream error body (OpenAI, vLLM, llama.cpp and Ollama shapes). */
export function upstreamMessage(bodyText: string): string {
  try {
    const j = JSON.parse(bodyText) as unknown;
    if (j && typeof j === 'object') {
      const o = j as { error?: unknown; message?: unknown; detail?: unknown };
      if (typeof o.error === 'string') return o.error;
      if (
        o.error &&
        typeof o.error === 'object' &&
        typeof (o.error as { message?: unknown }).message === 'string'
      ) {
        return (o.error as { message: string }).message;
      }
      if (typeof o.message === 'string') return o.message;
      if (typeof o.detail === 'string') return o.detail;
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return bodyText.slice(0, 500).trim() || '(empty body)';
}

export function mapUpstreamStatus(
  backend: string,
  status: number,
  bodyText: string,
  headers: Record<string, string | string[] | undefined>,
): PorticoError {
  const msg = upstreamMessage(bodyText);
  const retryAfterMs =
    parseRetryAfterMsHeader(headers['retry-after-ms']) ?? parseRetryAfterMs(headers['retry-after']);
  const upstream = {
    backend,
    class: 'status' as const,
    status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
  const retryHeaders: Record<string, string> =
    retryAfterMs !== undefined ? { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) } : {};
  let code: ErrorCode;
  let message: string;
  let passStatus: number | undefined;
  let fields: { param?: string; code?: string } = {};
  if (status === 400 || status === 422) {
    code = 'invalid_request';
    message = msg;
    passStatus = 400;
    fields = upstreamErrorFields(bodyText);
  } else if (status === 401 || status === 403) {
    code = 'upstream_error';
    message = `backend ${backend} rejected Portico's credentials (${status}): ${msg}. An operator must fix the backend's api_key.`;
  } else if (status === 404 && /"code"\s*:\s*"model_not_found"/.test(bodyText)) {
    // The backend is reachable and says so explicitly: its model is not served (vLLM, OpenAI).
    code = 'model_not_found';
    message = `backend ${backend} does not serve this model: ${msg}`;
  } else if (status === 404) {
    code = 'upstream_error';
    message = `backend ${backend} answered 404: ${msg}. Check the backend's base_url and model name.`;
  } else if (status === 408 || status === 504) {
    code = 'upstream_timeout';
    message = `backend ${backend} timed out (${status}): ${msg}`;
  } else if (status === 413) {
    code = 'payload_too_large';
    message = `backend ${backend}: request too large: ${msg}`;
  } else if (status === 429) {
    code = 'rate_limit_exceeded';
    message = `backend ${backend} is rate limiting: ${msg}`;
  } else if (status === 503 || status === 529) {
    code = 'upstream_unavailable';
    message = `backend ${backend} is unavailable (${status}): ${msg}`;
  } else {
    code = 'upstream_error';
    message = `backend ${backend} failed (${status}): ${msg}`;
  }
  return new PorticoError(code, message, {
    upstream,
    headers: retryHeaders,
    ...(passStatus ? { status: passStatus } : {}),
    ...(fields.param !== undefined ? { param: fields.param } : {}),
    ...(fields.code !== undefined ? { wireCode: fields.code } : {}),
  });
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'EPIPE',
]);

/** Map a transport-level error (connect refused, timeout, socket closed) to the catalog. */
export function mapTransportError(
  backend: string,
  err: unknown,
  signal: AbortSignal,
  phase: 'request' | 'stream',
): PorticoError {
  if (err instanceof PorticoError) return err;
  const e = err as { code?: string; name?: string; message?: string };
  if (signal.aborted) {
    if (signal.reason instanceof PorticoError) return signal.reason;
    return new PorticoError('client_closed_request', 'request aborted before the backend answered', {
      cause: err,
    });
  }
  if (
    e.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    e.code === 'UND_ERR_BODY_TIMEOUT' ||
    e.name === 'TimeoutError'
  ) {
    const what =
      e.code === 'UND_ERR_BODY_TIMEOUT' ? 'stopped sending (idle timeout)' : 'did not answer in time';
    return new PorticoError('upstream_timeout', `backend ${backend} ${what}`, {
      cause: err,
      upstream: { backend, class: 'timeout' },
    });
  }
  if (phase === 'stream') {
    return new PorticoError('upstream_error', `backend ${backend} closed the stream before it finished`, {
      cause: err,
      upstream: { backend, class: 'stream_cut' },
    });
  }
  if (e.code !== undefined && CONNECT_CODES.has(e.code)) {
    return new PorticoError('upstream_unavailable', `cannot reach backend ${backend} (${e.code})`, {
      cause: err,
      upstream: { backend, class: 'connect' },
    });
  }
  return new PorticoError('upstream_error', `backend ${backend} failed: ${e.message ?? String(err)}`, {
    cause: err,
    upstream: { backend, class: 'connect' },
  });
}
