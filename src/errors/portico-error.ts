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
  /** For upstream failures: what kind, so the router can decide to retry or fail over. */
  upstream?: UpstreamFailure;
  /**
   * The `code` the client sees when it is not the catalog's: an upstream 400's own code (e.g.
   * `context_length_exceeded`), which SDKs and frameworks branch on. Metrics and logs keep `code`.
   */
  wireCode?: string;
}

export interface UpstreamFailure {
  backend: string;
  class: 'connect' | 'timeout' | 'status' | 'protocol' | 'stream_cut';
  status?: number;
  /** Upstream's retry-after hint in ms, if any. */
  retryAfterMs?: number;
}

/** An error from the catalog. Anything else that escapes to the edge becomes internal_error. */
export class PorticoError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly retryable: boolean;
  readonly param: string | null;
  readonly headers: Record<string, string>;
  readonly upstream: UpstreamFailure | undefined;
  readonly wireCode: string | undefined;

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
    this.upstream = opts.upstream;
    this.wireCode = opts.wireCode;
  }

  toBody(): ErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.wireCode ?? this.code },
    };
  }
}

export function isPorticoError(e: unknown): e is PorticoError {
  return e instanceof PorticoError;
}
