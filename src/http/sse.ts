/**
 * Writes streams to the client as Server-Sent Events. One writer (SseWriter) for every stream:
 * it writes the head, records time-to-first-token and inter-token latency, handles backpressure,
 * writes a well-formed error event if the upstream fails mid-stream, and finishes the request
 * (status 499 when the client went away; aborting the upstream is the request context's job).
 *
 * Two feeders share it:
 * - sendSse: chunks as objects (translating paths: Anthropic in or out, engine, simulator, cache
 *   replays, legacy functions), each encoded by an SseFormat;
 * - sendPassThrough: an OpenAI SSE upstream forwarded as bytes to an OpenAI SSE client, edited only
 *   where the gateway must act (lib/sse-bytes.ts; the list is in docs/architecture.md).
 */
import type { FastifyReply } from 'fastify';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { SSE_DONE } from '../lib/sse.js';
import type { RequestContext } from '../pipeline/context.js';
import {
  afterJournal,
  finishRequest,
  recordUsage,
  takeUsage,
  type PipelineDeps,
  type RawOutcome,
} from '../pipeline/run.js';
import { ANONYMOUS_TENANT, UNKNOWN_MODEL } from '../telemetry/metrics.js';
import { toPorticoError } from './errors.js';
import { startRespond } from '../telemetry/tracing.js';
import type { PorticoError } from '../errors/portico-error.js';
import { countText } from '../tenancy/tokens.js';
import {
  completeEventsEnd,
  scanEvents,
  textOfSse,
  type ScanOptions,
  type ScanState,
} from '../lib/sse-bytes.js';

/** How a stream is written: OpenAI's `data:` lines ending in [DONE] by default. */
export interface SseFormat<C> {
  encode(chunk: C): string;
  /** Written after the last chunk. */
  end: string;
  /** A well-formed error event for a failure mid-way. */
  error(err: PorticoError): string;
}

const OPENAI_SSE: SseFormat<unknown> = {
  encode: (chunk) => `data: ${JSON.stringify(chunk)}\n\n`,
  end: SSE_DONE,
  error: (pe) => `data: ${JSON.stringify(pe.toBody())}\n\n`,
};

/** The one writer of a stream's bytes to the client socket. */
class SseWriter {
  readonly res: ServerResponse;
  #ttft: { observe(v: number): void };
  #itl: { observe(v: number): void };
  #last = 0;
  #finished = false;

  constructor(
    readonly deps: PipelineDeps,
    reply: FastifyReply,
    readonly ctx: RequestContext,
  ) {
    startRespond(ctx);
    reply.hijack();
    const res = reply.raw;
    // One object for writeHead: the reply's headers, then the request's own (rate limits, variant,
    // upstream model; lowercase names) set straight in it rather than through reply.headers().
    const headers: OutgoingHttpHeaders = {};
    const set = reply.getHeaders();
    for (const k in set) {
      const v = set[k];
      if (v !== undefined) headers[k] = v;
    }
    const own = ctx.responseHeaders;
    if (own) for (const k in own) headers[k] = own[k];
    headers['content-type'] = 'text/event-stream; charset=utf-8';
    headers['cache-control'] = 'no-cache';
    headers['x-accel-buffering'] = 'no';
    res.writeHead(200, headers);
    this.res = res;
    const tenant = ctx.tenant?.id ?? ANONYMOUS_TENANT;
    const model = ctx.model ?? UNKNOWN_MODEL;
    this.#ttft = deps.metrics.ttft.labels(tenant, model);
    this.#itl = deps.metrics.itl.labels(tenant, model);
  }

  get gone(): boolean {
    return this.res.destroyed;
  }

  /** Write one piece; false = the socket buffer is full, wait for 'drain'. */
  write(data: string | Buffer): boolean {
    this.#observe();
    return this.res.write(data);
  }

  /** Time to first token, then the gap since the previous piece. */
  #observe(): void {
    const now = performance.now();
    if (this.ctx.firstTokenAt === undefined) {
      this.ctx.firstTokenAt = now;
      this.#ttft.observe((now - this.ctx.startedAt) / 1000);
    } else {
      this.#itl.observe((now - this.#last) / 1000);
    }
    this.#last = now;
  }

  drained(): Promise<void> {
    const res = this.res;
    return new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  /**
   * The stream ended well: write the tail (if any) and finish with 200 (499 if the client left).
   * `tailIsContent`: the tail carries upstream pieces (a pass-through read that ended with
   * [DONE]), timed like any written piece.
   */
  end(tail?: string | Buffer, tailIsContent = false): void {
    if (this.#finished) return;
    const status = this.res.destroyed ? 499 : 200;
    if (this.res.destroyed) {
      this.#finish(status);
      return;
    }
    if (tailIsContent && tail !== undefined && tail.length > 0) this.#observe();
    this.#closeAfterJournal(status, tail);
  }

  /** The stream failed: a well-formed error event, then finish with the error's status. */
  fail(err: unknown, encode: (pe: PorticoError) => string): void {
    if (this.#finished) return;
    const ctx = this.ctx;
    const pe = toPorticoError(err, ctx.controller.signal);
    ctx.error = { code: pe.code, message: pe.message };
    if (pe.status >= 500)
      this.deps.logger.warn(
        { requestId: ctx.requestId, code: pe.code, err: pe.message },
        'stream failed mid-way',
      );
    if (this.res.destroyed) {
      this.#finish(pe.status);
      return;
    }
    this.#closeAfterJournal(pe.status, encode(pe));
  }

  /** The client went away. */
  gaveUp(): void {
    if (this.#finished) return;
    this.#finish(499);
  }

  /**
   * Accounted before the closing bytes reach the client (see recordUsage): the journal line is
   * written with the others finished in this event-loop turn, and the end goes out after it.
   */
  #closeAfterJournal(status: number, last: string | Buffer | undefined): void {
    this.#finished = true;
    recordUsage(this.deps, this.ctx, status, true);
    afterJournal(this.deps, () => {
      this.res.end(last);
      finishRequest(this.deps, this.ctx, status);
    });
  }

  #finish(status: number): void {
    this.#finished = true;
    finishRequest(this.deps, this.ctx, status);
  }
}

export async function sendSse<C = unknown>(
  deps: PipelineDeps,
  reply: FastifyReply,
  ctx: RequestContext,
  chunks: AsyncIterable<C>,
  format: SseFormat<C> = OPENAI_SSE,
): Promise<void> {
  const w = new SseWriter(deps, reply, ctx);
  let failed = false;
  try {
    for await (const chunk of chunks) {
      if (w.gone) break;
      if (!w.write(format.encode(chunk))) await w.drained();
    }
  } catch (err) {
    failed = true;
    w.fail(err, format.error);
  } finally {
    if (!failed) w.end(format.end);
  }
}

/** Bytes kept of a pass-through stream for the text it delivered (estimates, audit, partial billing). */
const MAX_CAPTURE_BYTES = 4 * 1024 * 1024;

/**
 * Forward an OpenAI SSE upstream to the client as bytes. Event-driven (no async iteration per
 * chunk): each read is scanned (lib/sse-bytes.ts), written at once, and the upstream paused while
 * the client's socket is full. Complete events only are forwarded; a partial one waits for its end.
 *
 * What the client receives equals what the upstream sent, except (docs/architecture.md):
 * the usage-only chunk and `"usage":null` fields when the client did not ask for usage, `model`
 * values rewritten to the alias, an upstream error event replaced by Portico's, and Portico's error
 * event when the upstream fails or ends without [DONE].
 *
 * Delivered bytes are kept in `delivered` (up to 4 MiB); `ctx.deliveredText()` decodes them, at any
 * time (completed, failed or cancelled): the place where billing of a cancelled stream reads what
 * reached the client. As on the object path, a completed stream's text goes to ctx.outputChars when
 * the upstream reported no usage, and to ctx.outputText when the audit log keeps bodies.
 */
export function sendPassThrough(
  deps: PipelineDeps,
  reply: FastifyReply,
  ctx: RequestContext,
  out: RawOutcome,
): Promise<void> {
  const { raw, first, done: settleAttempt } = out.dispatched;
  const body = raw.body;
  const w = new SseWriter(deps, reply, ctx);
  const res = w.res;
  const opts: ScanOptions = { modelJson: out.modelJson, hideUsage: !out.wantsUsage };
  const st: ScanState = { done: false };
  const delivered: Buffer[] = [];
  let deliveredBytes = 0;
  let pending: Buffer | undefined;
  let ended = false;
  /** Paused until the client's socket drains. */
  let waiting = false;

  const deliveredText = (): string => textOfSse(delivered);
  ctx.deliveredText = deliveredText;
  return new Promise<void>((resolve) => {
    const cleanup = (): void => {
      res.off('close', onClose);
    };
    const account = (completed: boolean): void => {
      if (st.usage !== undefined)
        takeUsage(ctx, st.usage, { prompt: out.countPrompt, completion: () => countText(deliveredText()) });
      // As on the object path (trackUsage): a stream cut short (cancelled, failed) is partial and,
      // without upstream usage, billed for the text that reached the client, counted at the end.
      if (!completed) ctx.partial = true;
      if (ctx.usage === undefined || ctx.captureOutput) {
        const text = deliveredText();
        if (ctx.usage === undefined) {
          ctx.outputChars = text;
          // Completed or not: a usage-less stream is billed for its prompt too.
          ctx.promptTokensEstimate ??= out.countPrompt();
        }
        if (ctx.captureOutput) ctx.outputText = text;
      }
    };
    /** `tail`: the last bytes, holding the [DONE] event: they go out after the record is journaled. */
    const finish = (how: 'ok' | 'aborted' | { error: unknown }, tail?: Buffer): void => {
      if (ended) return;
      ended = true;
      cleanup();
      // After [DONE]: drain what is left so the upstream connection is reused; else stop it.
      if (how === 'ok') body.drain();
      else body.destroy();
      account(how === 'ok');
      settleAttempt(how);
      if (how === 'ok') w.end(tail, true);
      else if (how === 'aborted') w.gaveUp();
      else w.fail(how.error, OPENAI_SSE.error);
      resolve();
    };
    const forward = (chunk: Buffer): void => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      const end = completeEventsEnd(buf);
      if (end < buf.length) {
        pending = buf.subarray(end);
        if (end === 0) return;
      }
      buf = scanEvents(buf, end, opts, st);
      if (st.done && st.errorData === undefined && !st.malformed) {
        // The read that carries [DONE]: the client gets it with the response's end, after the
        // ledger record is in the journal (w.end), so a crash cannot lose a completed stream's record.
        if (deliveredBytes < MAX_CAPTURE_BYTES) delivered.push(buf);
        finish('ok', buf);
        return;
      }
      if (buf.length > 0) {
        if (deliveredBytes < MAX_CAPTURE_BYTES) {
          delivered.push(buf);
          deliveredBytes += buf.length;
        }
        if (!w.write(buf) && !waiting) {
          waiting = true;
          body.pause();
          void w.drained().then(() => {
            waiting = false;
            if (!ended) body.resume();
          });
        }
      }
      if (st.errorData !== undefined) finish({ error: raw.eventError(st.errorData) });
      else if (st.malformed) finish({ error: raw.malformed() });
      else if (st.done) finish('ok');
    };
    const onData = (chunk: Buffer): void => {
      if (!ended) forward(chunk);
    };
    const onEnd = (): void => {
      if (ended) return;
      if (pending && pending.length > 0) {
        // A last event without its blank line: forward it as it came, then judge.
        const tail = pending;
        pending = undefined;
        const buf = scanEvents(tail, tail.length, opts, st);
        if (st.errorData !== undefined) return finish({ error: raw.eventError(st.errorData) });
        if (st.done) {
          delivered.push(buf);
          return finish('ok', buf);
        }
        if (buf.length > 0) {
          delivered.push(buf);
          w.write(buf);
        }
      }
      finish({ error: raw.cut() });
    };
    const onError = (err: unknown): void => {
      if (ended) return;
      if (res.destroyed) finish('aborted');
      else finish({ error: raw.mapError(err) });
    };
    const onClose = (): void => {
      if (!ended && !res.writableFinished) finish('aborted');
    };
    res.on('close', onClose);
    body.setSink({ data: onData, end: onEnd, error: onError });
    forward(first);
    // Unless the first write already filled the socket (then 'drain' resumes it).
    if (!ended && !waiting) body.resume();
  });
}
