/**
 * A whole upstream answer as one Buffer, read with an undici dispatch handler. `pool.request()`
 * wraps every response in a Readable stream with a body mixin, and reading it whole
 * (`arrayBuffer()`) adds a consumer, a promise and a copy; the unary path needs none of that: it
 * forwards the answer's bytes. This handler keeps the socket's chunks and joins them once at the
 * end. Cancelling `cancel` aborts the request (and frees its connection) at once, as `request()`
 * does with its `signal` option (a plain callback: no AbortSignal is needed, see lib/abort.ts);
 * undici's header and body timeouts apply unchanged.
 */
import type { Dispatcher } from 'undici';
import type { Cancellable } from '../lib/abort.js';

export interface UpstreamBytes {
  statusCode: number;
  /** Response headers; only parsed for error statuses (the success path never reads them). */
  headers: Record<string, string>;
  body: Buffer;
}

/** Where a transport error happened: before the response's head arrived, or while reading its body. */
export type TransportPhase = 'request' | 'stream';

export interface BytesRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
  headersTimeout: number;
  bodyTimeout: number;
  cancel: Cancellable;
  /** Bytes kept of an error status's body (the rest is read and dropped). */
  maxErrorBody: number;
  /** Maps a transport error (or the cancellation's abort) to what the caller rejects with. */
  mapError: (err: unknown, phase: TransportPhase) => Error;
}

/** Header names and values as undici hands them to a raw handler, as a plain object (last value wins, names lowercased). */
export function headersOf(raw: ReadonlyArray<Buffer | string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
  return out;
}

/**
 * What both upstream handlers share (this one and upstream-stream.ts's): the request, and undici's
 * abort wired to the request's cancellation from the first onConnect on.
 */
export abstract class CancellableHandler {
  protected abort: ((err?: Error) => void) | undefined = undefined;
  protected off: (() => void) | undefined = undefined;
  readonly #onAbort = (): void => {
    this.abort?.(this.req.cancel.reason as Error);
  };

  constructor(protected readonly req: BytesRequest) {}

  // undici's own handler interface (the one its request() API implements; no wrapper per request).
  onConnect(abort: (err?: Error) => void): void {
    const cancel = this.req.cancel;
    if (cancel.aborted) {
      abort(cancel.reason as Error);
      return;
    }
    // onConnect can run again for the same request (undici re-queues it after a socket error).
    if (this.abort === undefined) this.off = cancel.onAbort(this.#onAbort);
    this.abort = abort;
  }
}

class BytesHandler extends CancellableHandler {
  #status = 0;
  #raw: ReadonlyArray<Buffer | string> = [];
  #chunks: Buffer[] = [];
  #size = 0;
  #settled = false;
  readonly #resolve: (r: UpstreamBytes) => void;
  readonly #reject: (e: Error) => void;

  constructor(req: BytesRequest, resolve: (r: UpstreamBytes) => void, reject: (e: Error) => void) {
    super(req);
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true; // 1xx (103 Early Hints): the answer's head is still to come
    this.#status = statusCode;
    this.#raw = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#status < 400) {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
    } else if (this.#size < this.req.maxErrorBody) {
      const kept = chunk.subarray(0, this.req.maxErrorBody - this.#size);
      this.#chunks.push(kept);
      this.#size += kept.length;
    }
    return true;
  }

  onComplete(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.off?.();
    const chunks = this.#chunks;
    // The caller owns the body and may edit it in place (sse-bytes.ts's alias rewrite): a single
    // chunk is handed over as it is, so nothing else may keep a reference to it.
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#size);
    this.#resolve({
      statusCode: this.#status,
      headers: this.#status >= 400 ? headersOf(this.#raw) : {},
      body,
    });
  }

  onError(err: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.off?.();
    this.#reject(this.req.mapError(err, this.#status === 0 ? 'request' : 'stream'));
  }
}

/** POST `req.body` to `req.path` on `dispatcher`; resolves with the whole answer (any status). */
export function postForBytes(dispatcher: Dispatcher, req: BytesRequest): Promise<UpstreamBytes> {
  return new Promise((resolve, reject) =>
    dispatchPost(dispatcher, req, new BytesHandler(req, resolve, reject)),
  );
}

/** A handler of undici's dispatch API (the legacy methods its request() API implements). */
export type PostHandler = Dispatcher.DispatchHandler & { onError(err: Error): void };

/** Dispatch `req` as a POST to `handler`; a synchronous throw reaches the handler's onError. */
export function dispatchPost(dispatcher: Dispatcher, req: BytesRequest, handler: PostHandler): void {
  try {
    dispatcher.dispatch(
      {
        method: 'POST',
        path: req.path,
        headers: req.headers,
        body: req.body,
        headersTimeout: req.headersTimeout,
        bodyTimeout: req.bodyTimeout,
      },
      handler,
    );
  } catch (err) {
    handler.onError(err as Error);
  }
}
