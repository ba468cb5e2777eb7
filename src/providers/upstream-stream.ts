/**
 * An upstream stream's bytes, delivered as they arrive by an undici dispatch handler (the
 * pass-through SSE path). `pool.request()` would wrap the answer in a Readable with a body mixin
 * and listen on an AbortSignal; the pass-through path needs neither: each chunk undici parses goes
 * straight to the one consumer (`UpstreamBody.setSink`), and backpressure is undici's own — a chunk
 * that arrives while the consumer is paused pauses the parser (onData returns false) until
 * `resume()`. Cancelling `cancel` aborts the request and frees its connection, as the unary path
 * (upstream-bytes.ts) does; undici's header and body (idle) timeouts apply unchanged.
 */
import type { Dispatcher } from 'undici';
import { CancellableHandler, dispatchPost, headersOf, type BytesRequest } from './upstream-bytes.js';

/**
 * Where an upstream body's bytes go: chunks in order, then exactly one of end() or error(). A chunk
 * is the sink's own: nothing here (or in undici's plain HTTP/1 Pool, with no interceptors) reads it
 * again, so the sink may edit it in place (sse-bytes.ts rewrites the model alias inside it). A
 * change that keeps or re-reads chunks (a cache or retry interceptor, HTTP/2) must copy them first.
 */
export interface UpstreamSink {
  data(chunk: Buffer): void;
  end(): void;
  error(err: unknown): void;
}

/** An upstream response body being read (the consumer's side of the handler below). */
export interface UpstreamBody {
  /**
   * Where chunks go from now on (chunks that arrived before wait for it, paused). `undefined`: hold
   * everything, the end and an error included, until a sink is set again.
   */
  setSink(sink: UpstreamSink | undefined): void;
  /** Hold deliveries (the upstream socket stops being read once its buffers fill). */
  pause(): void;
  /** Deliver what waited, then go on reading. */
  resume(): void;
  /** Read the rest and drop it (the connection stays reusable): the consumer is done with it. */
  drain(): void;
  /** Stop: abort the request (its connection is closed) unless the answer is already complete. */
  destroy(): void;
  /** The upstream's answer is complete (every byte received). */
  readonly complete: boolean;
  /** Response headers, names lowercased (parsed on first read: the pass-through path never asks). */
  readonly headers: Record<string, string>;
}

/** The head of an answer: a body to read (status < 400), or an error status's body (bounded). */
export type UpstreamHead =
  | { statusCode: number; body: UpstreamBody }
  | { statusCode: number; headers: Record<string, string>; errorBody: Buffer };

const NO_SINK: UpstreamSink = { data: () => undefined, end: () => undefined, error: () => undefined };

class StreamHandler extends CancellableHandler implements UpstreamBody {
  #status = 0;
  #raw: ReadonlyArray<Buffer | string> = [];
  /** undici's resume, when onData returned false. */
  #resumeParser: (() => void) | undefined = undefined;
  #parserPaused = false;
  #sink: UpstreamSink | undefined = undefined;
  #paused = false;
  /** Chunks that arrived with no sink or while paused. */
  #queue: Buffer[] = [];
  #complete = false;
  #failed: { err: unknown } | undefined = undefined;
  /** end() or error() was delivered, or the consumer gave up: nothing more goes to the sink. */
  #closed = false;
  #headSettled = false;
  #errorChunks: Buffer[] = [];
  #errorSize = 0;
  #headers: Record<string, string> | undefined = undefined;
  readonly #resolve: (h: UpstreamHead) => void;
  readonly #reject: (e: Error) => void;

  constructor(req: BytesRequest, resolve: (h: UpstreamHead) => void, reject: (e: Error) => void) {
    super(req);
    this.#resolve = resolve;
    this.#reject = reject;
  }

  get complete(): boolean {
    return this.#complete;
  }

  get headers(): Record<string, string> {
    return (this.#headers ??= headersOf(this.#raw));
  }

  // ---- the consumer's side

  setSink(sink: UpstreamSink | undefined): void {
    this.#sink = sink;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#flush();
  }

  drain(): void {
    this.#sink = NO_SINK;
    this.#closed = true;
    this.#queue = [];
    this.#paused = false;
    this.#flush();
  }

  destroy(): void {
    const open = !this.#complete && this.#failed === undefined;
    this.#sink = NO_SINK;
    this.#closed = true;
    this.#queue = [];
    if (open) {
      this.off?.();
      this.abort?.(new Error('upstream body destroyed by the gateway'));
    }
  }

  /**
   * The consumer threw from one of its callbacks (called from undici's, which would swallow it):
   * stop the upstream and give the consumer its error once, so its request ends instead of waiting.
   */
  #consumerThrew(sink: UpstreamSink, err: unknown): void {
    const first = !this.#closed;
    this.destroy();
    if (!first) return;
    try {
      sink.error(err);
    } catch {
      // the consumer's own error path failed too: nothing more can be done from here
    }
  }

  /** Deliver what waited while unpaused; then the end or the error; else let undici read on. */
  #flush(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    while (!this.#paused && this.#queue.length > 0) {
      try {
        sink.data(this.#queue.shift() as Buffer);
      } catch (err) {
        this.#consumerThrew(sink, err);
        return;
      }
    }
    if (this.#paused) return;
    if (this.#complete || this.#failed !== undefined) {
      if (this.#closed) return;
      this.#closed = true;
      try {
        if (this.#failed !== undefined) sink.error(this.#failed.err);
        else sink.end();
      } catch (err) {
        this.#consumerThrew(sink, err);
      }
      return;
    }
    if (this.#parserPaused) {
      this.#parserPaused = false;
      this.#resumeParser?.();
    }
  }

  // ---- undici's handler interface (onConnect: CancellableHandler's)

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx (103 Early Hints): the answer's head is still to come
    this.#status = statusCode;
    this.#raw = rawHeaders;
    this.#resumeParser = resume;
    if (statusCode < 400) {
      this.#headSettled = true;
      this.#resolve({ statusCode, body: this });
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#status >= 400) {
      if (this.#headSettled) return true;
      const kept = chunk.subarray(0, this.req.maxErrorBody - this.#errorSize);
      this.#errorChunks.push(kept);
      this.#errorSize += kept.length;
      if (this.#errorSize >= this.req.maxErrorBody) {
        // Enough of an error body: settle with it and stop reading (an endless one must not hold
        // the attempt, or its connection).
        this.onComplete();
        this.abort?.(new Error('upstream error body cut at the cap'));
      }
      return true;
    }
    if (this.#closed) return true; // drained or destroyed: dropped
    const sink = this.#sink;
    if (sink === undefined || this.#paused || this.#queue.length > 0) {
      this.#queue.push(chunk);
      this.#parserPaused = true;
      return false;
    }
    try {
      sink.data(chunk);
    } catch (err) {
      this.#consumerThrew(sink, err);
      return true;
    }
    if (this.#paused) {
      this.#parserPaused = true;
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.off?.();
    if (this.#status >= 400) {
      if (this.#headSettled) return;
      this.#headSettled = true;
      const chunks = this.#errorChunks;
      this.#resolve({
        statusCode: this.#status,
        headers: headersOf(this.#raw),
        errorBody: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#errorSize),
      });
      return;
    }
    this.#complete = true;
    this.#flush();
  }

  onError(err: Error): void {
    this.off?.();
    if (!this.#headSettled && this.#status >= 400) {
      // An error status whose body was cut: the status and what arrived are enough.
      this.onComplete();
      return;
    }
    if (!this.#headSettled) {
      this.#headSettled = true;
      this.#reject(this.req.mapError(err, this.#status === 0 ? 'request' : 'stream'));
      return;
    }
    if (this.#complete || this.#failed !== undefined) return;
    this.#failed = { err };
    // As a Readable destroyed with an error: the error reaches a paused consumer at once (what
    // waited is dropped), so a deadline or a cancellation ends a stream whose client stopped reading.
    if (this.#sink !== undefined && this.#paused) {
      this.#queue = [];
      this.#paused = false;
    }
    this.#flush();
  }
}

/**
 * POST `req.body` to `req.path` on `dispatcher`; resolves at the response's head (status < 400:
 * its body to read) or, for an error status, once its body (up to `maxErrorBody`) is read. A
 * transport error before the head rejects with `req.mapError(err, 'request')`; one while reading
 * the body reaches the sink's `error` unmapped.
 */
export function postForStream(dispatcher: Dispatcher, req: BytesRequest): Promise<UpstreamHead> {
  return new Promise((resolve, reject) =>
    dispatchPost(dispatcher, req, new StreamHandler(req, resolve, reject)),
  );
}
