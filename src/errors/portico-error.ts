import { ERROR_CATALOG, type ErrorCode } from './catalog.js';

/** The error body every client sees: OpenAI's shape. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export interface PorticoErrorOptions {
  param?: string | null;
  /** Extra response headers (retry-after, x-should-retry, ...). */
  headers?: Record<string, string>;
  /** Override the catalog status (e.g. pass through an upstream 4xx). */
  status?: number;
  cause?: unknown;
}

/** An error from the catalog. Anything else that escapes to the edge becomes internal_error. */
export class PorticoError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly retryable: boolean;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, opts: PorticoErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    const entry = ERROR_CATALOG[code];
    this.name = 'PorticoError';
    this.code = code;
    this.status = opts.status ?? entry.status;
    this.type = entry.type;
    this.retryable = entry.retryable;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function isPorticoError(e: unknown): e is PorticoError {
  return e instanceof PorticoError;
}
