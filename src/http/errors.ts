/**
 * Turns anything thrown into a catalog error. Fastify's own errors (body too large, bad media type,
 * bad JSON) are mapped to their catalog codes; an aborted request reports why it was aborted;
 * everything else is an internal_error (a bug) and is logged with its stack.
 */
import { PorticoError, isPorticoError } from '../errors/portico-error.js';
import { StateInvalidInputError, StateUnavailableError } from '../state/errors.js';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: unknown;
}

export function toPorticoError(err: unknown, signal?: AbortSignal): PorticoError {
  if (isPorticoError(err)) return err;
  if (signal?.aborted) {
    if (signal.reason instanceof PorticoError) return signal.reason;
    return new PorticoError(
      'client_closed_request',
      'The client closed the connection before the response was ready.',
    );
  }
  if (err instanceof StateInvalidInputError)
    return new PorticoError('invalid_request', `${err.message}.`, { param: err.field });
  if (err instanceof StateUnavailableError)
    return err.store === 'redis'
      ? new PorticoError(
          'limits_unavailable',
          "Portico's limit store (Redis) is unreachable, so the request cannot be admitted safely. Retry shortly.",
          { headers: { 'retry-after': '1' }, cause: err },
        )
      : new PorticoError(
          'state_unavailable',
          `Portico's key, tenant and usage store (${err.store}) is unreachable or not answering. Retry shortly.`,
          { headers: { 'retry-after': '1' }, cause: err },
        );
  // Only input nested deeper than the JS stack allows gets here (the body parsed, but walking or
  // serialising it did not): the client's to fix, not a Portico failure.
  if (err instanceof RangeError && err.message.includes('call stack'))
    return new PorticoError(
      'invalid_request',
      'The request is nested too deeply to process. Flatten the nested arrays or objects.',
    );
  const e = (err ?? {}) as FastifyLikeError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PorticoError(
        'payload_too_large',
        'The request body is too large. Send a smaller body, or ask the operator to raise server.body_limit_bytes.',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PorticoError(
        'unsupported_media_type',
        'Unsupported Content-Type. Send the body as JSON with "Content-Type: application/json".',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new PorticoError('invalid_json', 'The body is empty. Send a JSON object.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PorticoError('invalid_request', 'Content-Length does not match the body that was sent.');
    case 'FST_ERR_BAD_URL':
      return new PorticoError(
        'invalid_request',
        'The URL is not valid: a percent-encoded part does not decode to UTF-8 text.',
      );
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new PorticoError('invalid_request', 'A path segment is too long (at most 100 characters).');
    default:
      break;
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new PorticoError('invalid_request', e.message ?? 'Bad request.', { status: e.statusCode });
  }
  return new PorticoError(
    'internal_error',
    'Internal error in Portico. Quote the x-request-id header when you report it.',
    { cause: err },
  );
}
