/**
 * Inbound direction: every error (PorticoError, an OpenAI-shaped error body, anything else) -> the
 * Anthropic error body `{type:'error', error:{type, message}}` (https://docs.anthropic.com/en/api/errors).
 * The HTTP status stays the catalog's (e.g. 503 rather than Anthropic's 529; SDKs retry both).
 */
import type { ErrorCode } from '../../../errors/catalog.js';
import { isPorticoError } from '../../../errors/portico-error.js';
import type { AnthropicErrorBody } from '../types.js';

const BY_CODE: Partial<Record<ErrorCode, string>> = {
  invalid_api_key: 'authentication_error',
  admin_unauthorized: 'authentication_error',
  permission_denied: 'permission_error',
  not_found: 'not_found_error',
  model_not_found: 'not_found_error',
  payload_too_large: 'request_too_large',
  rate_limit_exceeded: 'rate_limit_error',
  insufficient_quota: 'rate_limit_error',
  upstream_unavailable: 'overloaded_error',
  queue_timeout: 'overloaded_error',
  draining: 'overloaded_error',
  upstream_timeout: 'timeout_error',
  unsupported_operation: 'invalid_request_error',
  client_closed_request: 'invalid_request_error',
};

/** Anthropic error type for an HTTP status (used when no catalog code is known). */
export function anthropicErrorTypeForStatus(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'billing_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  if (status === 504) return 'timeout_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

function fromBody(body: unknown): { code?: string; message?: string; status?: number } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const e = (body as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  const message = (e as { message?: unknown }).message;
  const out: { code?: string; message?: string } = {};
  if (typeof code === 'string') out.code = code;
  if (typeof message === 'string') out.message = message;
  return out;
}

export function openAIErrorToAnthropic(err: unknown, status?: number): AnthropicErrorBody {
  if (isPorticoError(err)) {
    const type = BY_CODE[err.code] ?? anthropicErrorTypeForStatus(err.status);
    return { type: 'error', error: { type, message: err.message } };
  }
  const b = fromBody(err);
  if (b) {
    const type =
      (b.code !== undefined ? BY_CODE[b.code as ErrorCode] : undefined) ??
      anthropicErrorTypeForStatus(status ?? 500);
    return { type: 'error', error: { type, message: b.message ?? 'error' } };
  }
  // Never leak internals of unknown errors to the client.
  return {
    type: 'error',
    error: { type: anthropicErrorTypeForStatus(status ?? 500), message: 'Internal error.' },
  };
}
