/**
 * Stage: dispatch. Picks a backend from the pool and makes the provider call, with the resilience
 * wrappers composed around each attempt:
 * - per-attempt timeout (backend `timeout_ms`: the whole answer, or a stream's first chunk — see
 *   Attempt) and total timeout (model `timeout_ms`, team route);
 * - retries (model `retry`, default 3 attempts) on connect errors, timeouts, 429/502/503/504/529 and
 *   streams that fail before their first chunk — never after a byte reached the client; the next
 *   attempt goes to another backend when there is one (a fallback), with exponential backoff and
 *   full jitter. An upstream's retry-after belongs to the backend that sent it: that backend cools
 *   down (the pool passes it over while another may take the request) and the hint is waited for
 *   (up to `max_retry_after_ms`, else the error goes to the client) only when the next attempt has
 *   no other backend to go to;
 * - a circuit breaker per backend (passive ejection), and the model's `fallbacks` chain when every
 *   backend of the pool failed or is unavailable.
 * Upstream metrics, in-flight counts, latency EWMA and trace spans are recorded per attempt.
 */
import { PorticoError, isPorticoError } from '../errors/portico-error.js';
import { observeLatency, type Backend, type Pool } from '../routing/pool.js';
import { publishBackendState } from '../routing/health.js';
import { Cancel, sleep } from '../lib/abort.js';
import { RetrySchema } from '../config/schema.js';
import type { ProviderCallContext, ProviderStream, RawSseStream } from '../providers/spec.js';
import { firstEventError } from '../lib/sse-bytes.js';
import { NO_BACKEND, type GatewayMetrics } from '../telemetry/metrics.js';
import { upstreamHeaders, type RequestContext } from './context.js';
import type { Usage } from '../providers/openai-types.js';
import { startAttempt, type AttemptSpan, type GenAiOperation } from '../telemetry/tracing.js';

export interface DispatchDeps {
  metrics: GatewayMetrics;
}

const OPERATIONS: Partial<Record<RequestContext['route'], GenAiOperation>> = {
  completions: 'text_completion',
  embeddings: 'embeddings',
  rerank: 'rerank',
};

/** The trace span of one provider attempt (undefined when the request is not traced). */
function attemptSpan(ctx: RequestContext, backend: Backend, model: string): AttemptSpan | undefined {
  if (!ctx.trace) return undefined;
  return startAttempt(ctx, {
    backend: backend.id,
    providerKind: backend.provider.kind,
    model,
    operation: OPERATIONS[ctx.route] ?? 'chat',
  });
}

function resultInfo(r: unknown): { usage?: Usage | null; model?: string } {
  if (typeof r !== 'object' || r === null) return {};
  const o = r as { usage?: Usage | null; model?: unknown };
  return { usage: o.usage ?? null, ...(typeof o.model === 'string' ? { model: o.model } : {}) };
}

/**
 * What a provider attempt gets. A class (one shape, a prototype getter) rather than a literal
 * with a getter: the AbortSignal is made only when a provider asks for `signal`.
 */
class CallContext implements ProviderCallContext {
  readonly cancel: Cancel;
  readonly requestId: string;
  readonly correlationId: string;
  readonly headers: Record<string, string>;
  readonly timeoutMs: number | undefined;

  constructor(ctx: RequestContext, backend: Backend, span: AttemptSpan | undefined, cancel: Cancel) {
    this.cancel = cancel;
    this.requestId = ctx.requestId;
    this.correlationId = ctx.correlationId;
    this.headers = span ? { ...upstreamHeaders(ctx), ...span.headers } : upstreamHeaders(ctx);
    this.timeoutMs = backend.config.timeout_ms || undefined;
  }

  get signal(): AbortSignal {
    return this.cancel.signal;
  }
}

function callContext(
  ctx: RequestContext,
  backend: Backend,
  span: AttemptSpan | undefined,
  cancel: Cancel,
): ProviderCallContext {
  return new CallContext(ctx, backend, span, cancel);
}

/**
 * One attempt with a limit of its own: its own cancellation, following the request's (or the
 * flight's), and the backend's `timeout_ms` — for a stream, the time from the attempt's start to its
 * first chunk; for a non-streaming call, to the whole answer. The HTTP providers' headers timeouts
 * alone do not cover a stream: vLLM, llama.cpp and OpenAI send their 200 headers at once and the
 * first token when it is generated, so a queued or stalled backend would wait for the stream idle
 * timeout (minutes) with no failover; for non-streaming calls undici's timers tick at about 1 s,
 * and the in-process providers (engine, simulator) have none. When the limit passes, the attempt
 * alone is cancelled with upstream_timeout (class timeout: retried elsewhere, counted against the
 * backend) — nothing has reached the client yet. One timer per attempt, cleared at the first chunk
 * or the answer: nothing per chunk. Non-streaming calls make one only when the backend has a
 * `timeout_ms` (dispatchUnary).
 */
class Attempt {
  readonly cancel = new Cancel();
  /** Set when the limit passed: the error the attempt failed with. */
  timedOut: PorticoError | undefined = undefined;
  #timer: NodeJS.Timeout | undefined = undefined;
  readonly #unlink: () => void;

  constructor(parent: Cancel, backend: Backend, streaming = true) {
    const cancel = this.cancel;
    if (parent.aborted) cancel.abort(parent.reason);
    this.#unlink = parent.onAbort(() => cancel.abort(parent.reason));
    const ms = backend.config.timeout_ms;
    if (ms) {
      this.#timer = setTimeout(() => {
        this.timedOut = new PorticoError(
          'upstream_timeout',
          streaming
            ? `backend ${backend.id} sent no first chunk within its timeout_ms of ${ms} ms`
            : `backend ${backend.id} did not answer within its timeout_ms of ${ms} ms`,
          { upstream: { backend: backend.id, class: 'timeout' } },
        );
        cancel.abort(this.timedOut);
      }, ms);
      this.#timer.unref();
    }
  }

  /** The first chunk arrived: the limit no longer applies (throws if it passed meanwhile). */
  started(): void {
    clearTimeout(this.#timer);
    if (this.timedOut) throw this.timedOut;
  }

  /** The attempt is over: stop following the request's cancellation. */
  end(): void {
    clearTimeout(this.#timer);
    this.#unlink();
  }

  /** The attempt failed before its first chunk: the error to report (the timeout, if it passed). */
  fail(err: unknown): unknown {
    this.end();
    return this.timedOut ?? err;
  }
}

const DEFAULT_RETRY = RetrySchema.parse({});
// 529: Anthropic's "overloaded", a 503 by another number.
const RETRY_STATUSES = new Set([429, 502, 503, 504, 529]);

function noBackend(alias: string): PorticoError {
  return new PorticoError(
    'upstream_unavailable',
    `No backend of model "${alias}" is available right now (all failed, ejected or with an open circuit). Retry shortly.`,
    { headers: { 'retry-after': '1' } },
  );
}

/** May another attempt help? (Before the first byte reached the client.) */
export function isRetryable(err: unknown): boolean {
  if (!isPorticoError(err)) return false;
  if (err.code === 'upstream_unavailable' && !err.upstream) return true;
  const up = err.upstream;
  if (!up) return false;
  if (up.class === 'status') return up.status !== undefined && RETRY_STATUSES.has(up.status);
  return (
    up.class === 'connect' || up.class === 'timeout' || up.class === 'stream_cut' || up.class === 'protocol'
  );
}

/** Does this failure say the backend is unwell (circuit breaker)? 429 and client errors do not. */
export function countsAgainstBackend(err: unknown): boolean {
  if (!isPorticoError(err) || !err.upstream) return false;
  const up = err.upstream;
  return up.class !== 'status' || (up.status !== undefined && up.status >= 500);
}

function failureStatus(err: unknown): string {
  if (!isPorticoError(err)) return 'error';
  const up = err.upstream;
  if (up?.status !== undefined) return String(up.status);
  if (up) return up.class;
  return err.code === 'client_closed_request' ? 'aborted' : String(err.status);
}

/**
 * A backend that answered with a retry-after (429, 503) cools down until the hint expires: the
 * pool picks it only when no other backend may take the request (routing/pool.ts).
 */
function coolDown(backend: Backend, err: unknown): void {
  const ms = isPorticoError(err) ? err.upstream?.retryAfterMs : undefined;
  if (ms !== undefined && ms > 0) backend.coolingUntil = Math.max(backend.coolingUntil, Date.now() + ms);
}

function recordFailure(
  deps: DispatchDeps,
  backend: Backend,
  model: string,
  err: unknown,
  seconds: number,
): void {
  const status = failureStatus(err);
  deps.metrics.child.upstreamRequests(backend.id, model, status).inc();
  deps.metrics.child.upstreamDuration(backend.id, model).observe(seconds);
  if (isPorticoError(err) && err.upstream) {
    const cls =
      err.upstream.class === 'status'
        ? err.upstream.status === 429
          ? 'status_429'
          : `status_${Math.floor((err.upstream.status ?? 500) / 100)}xx`
        : err.upstream.class;
    deps.metrics.upstreamErrors.labels(backend.id, model, cls).inc();
    backend.lastError = err.message;
    backend.lastErrorAt = Date.now();
  }
}

interface Attempted<R> {
  result: R;
  backend: Backend;
}

/**
 * The retry/fallback loop. `run` makes one attempt on one backend and resolves once the attempt
 * has succeeded far enough that nothing was sent to the client yet (unary: the whole answer;
 * streams: the first chunk). The first attempt, which nearly always succeeds, runs outside the
 * loop: no fallback chain, loop state or suspended async frame is built for it.
 */
function withRetries<R>(
  deps: DispatchDeps,
  ctx: RequestContext,
  pool: Pool,
  cancel: Cancel,
  run: (backend: Backend, pool: Pool) => Promise<R>,
): Promise<Attempted<R>> {
  const retry = ctx.snapshot.config.models[pool.alias]?.retry ?? DEFAULT_RETRY;
  const first = retry.attempts >= 1 ? pool.pick(undefined, { affinityKey: ctx.affinityKey }) : undefined;
  if (!first) return retryLoop(deps, ctx, pool, cancel, run, retry, undefined);
  ctx.backend = first.id;
  return run(first, pool).then(
    (result) => ({ result, backend: first }),
    (err: unknown) => {
      coolDown(first, err);
      if (cancel.aborted || !isRetryable(err)) throw err;
      return retryLoop(deps, ctx, pool, cancel, run, retry, { backend: first, err });
    },
  );
}

/**
 * After a failed attempt that may be retried: false when no attempt is left; otherwise waits the
 * back-off. The retry is counted when it goes out (retryLoop): one may find no backend left to go
 * to. An upstream's retry-after is not waited for here: it belongs to the backend that sent it
 * (coolDown), and is waited for only if the next attempt goes there.
 */
async function backOff(cancel: Cancel, retry: typeof DEFAULT_RETRY, attempts: number): Promise<boolean> {
  if (attempts >= retry.attempts) return false;
  const cap = Math.min(retry.max_backoff_ms, retry.backoff_ms * 2 ** (attempts - 1));
  await sleep(Math.random() * cap, cancel.signal);
  return true;
}

/** Retries and fallbacks, after a first attempt failed (`failed`) or found no backend. */
async function retryLoop<R>(
  deps: DispatchDeps,
  ctx: RequestContext,
  pool: Pool,
  cancel: Cancel,
  run: (backend: Backend, pool: Pool) => Promise<R>,
  retry: typeof DEFAULT_RETRY,
  failed: { backend: Backend; err: unknown } | undefined,
): Promise<Attempted<R>> {
  const models = ctx.snapshot.config.models;
  const chain: Pool[] = [pool];
  for (const alias of models[pool.alias]?.fallbacks ?? []) {
    const p = ctx.snapshot.pools.get(alias);
    if (p) chain.push(p);
  }
  const last = chain[chain.length - 1];
  const pick = { affinityKey: ctx.affinityKey };
  let attempts = 0;
  let lastErr: unknown;
  let previous: Backend | undefined;
  if (failed) {
    attempts = 1;
    lastErr = failed.err;
    previous = failed.backend;
    if (!(await backOff(cancel, retry, attempts))) throw lastErr;
  }
  for (const p of chain) {
    // The backends of this pool that failed (the first attempt's, when it was made on this pool).
    let tried: Set<string> | undefined = p === pool && failed ? new Set([failed.backend.id]) : undefined;
    while (attempts < retry.attempts) {
      let backend = p.pick(tried, pick);
      // Every backend of this pool was tried: the same one may be retried (single-backend pools).
      const again = !backend && tried !== undefined && tried.size > 0 && p === last;
      if (again) backend = p.pick(undefined, pick);
      if (!backend) break;
      // Cooling down after a retry-after: picked only because no other backend of this pool may
      // take the request. Wait out a short hint; pass over a longer one (the next pool may answer;
      // if none does, the client gets the upstream's error and its retry-after).
      const cooling = backend.coolingUntil - Date.now();
      if (cooling > 0) {
        if (cooling > retry.max_retry_after_ms) {
          backend.circuit.release();
          if (again) break;
          (tried ??= new Set()).add(backend.id);
          continue;
        }
        try {
          await sleep(cooling, cancel.signal);
        } catch (err) {
          backend.circuit.release();
          throw err;
        }
      }
      // Counted as the attempt goes out: a retry of the attempt that failed (labelled with its
      // backend), moved to another backend; or the fallback chain taken with no attempt on the
      // primary, none of whose backends may take requests (circuits open).
      if (previous) {
        deps.metrics.retries.labels(pool.alias, previous.id).inc();
        if (previous.id !== backend.id)
          deps.metrics.fallbacks.labels(pool.alias, previous.id, backend.id).inc();
      } else if (p !== pool) deps.metrics.fallbacks.labels(pool.alias, NO_BACKEND, backend.id).inc();
      attempts++;
      ctx.backend = backend.id;
      if (p !== pool) ctx.fallbackModel = p.alias;
      try {
        return { result: await run(backend, p), backend };
      } catch (err) {
        lastErr = err;
        coolDown(backend, err);
        if (cancel.aborted || !isRetryable(err)) throw err;
        (tried ??= new Set()).add(backend.id);
        previous = backend;
        if (!(await backOff(cancel, retry, attempts))) break;
      }
    }
    if (attempts >= retry.attempts) break;
  }
  throw lastErr ?? noBackend(pool.alias);
}

/** settle()'s outcome for an attempt that its request's own cancellation ended. */
const ABORTED: unique symbol = Symbol('aborted');

/**
 * How an attempt that failed ended: ABORTED when its request (or flight) was cancelled and the
 * attempt's own limit did not fire first, else the error.
 */
function outcomeOf(cancel: Cancel, attempt: Attempt | undefined, err: unknown): unknown {
  return cancel.aborted && attempt?.timedOut === undefined ? ABORTED : err;
}

/**
 * The end of an attempt: metrics, and its verdict for the circuit breaker and the latency EWMA.
 * `err`: undefined for a success, ABORTED for the request's own cancellation, else the failure.
 * `streamed`: a stream that delivered its first chunk, whose success verdict and latency sample
 * (time to first chunk) settleFirstChunk gave then; its end adds only a failure of its own.
 */
function settle(
  deps: DispatchDeps,
  backend: Backend,
  model: string,
  err: unknown,
  seconds: number,
  streamed = false,
): void {
  if (err === ABORTED) {
    // The request's own cancellation ended the attempt (the client left, its deadline passed, the
    // last reader of a flight went away): no verdict on the backend, counted `aborted` — whatever
    // the provider threw for it (an AbortError from the in-process ones, the deadline's 504).
    if (!streamed) backend.circuit.release();
    deps.metrics.child.upstreamRequests(backend.id, model, 'aborted').inc();
    deps.metrics.child.upstreamDuration(backend.id, model).observe(seconds);
    return;
  }
  const before = backend.circuit.state;
  if (err === undefined) {
    if (!streamed) {
      backend.circuit.onSuccess();
      observeLatency(backend, seconds * 1000);
    }
    deps.metrics.child.upstreamRequests(backend.id, model, '200').inc();
    deps.metrics.child.upstreamDuration(backend.id, model).observe(seconds);
  } else {
    if (countsAgainstBackend(err)) backend.circuit.onFailure(Date.now());
    else if (!streamed) backend.circuit.release();
    recordFailure(deps, backend, model, err, seconds);
  }
  // Gauges only change with the circuit (health changes publish from the checker): keep the
  // success path free of label lookups.
  if (backend.circuit.state !== before) publishBackendState(deps.metrics, backend, model);
}

/**
 * A stream's first chunk arrived: the backend answered. A half-open probe closes the circuit now
 * rather than at the stream's end (until then every other request would be refused); the latency
 * sample is the time to first chunk (a long generation says nothing about the backend's speed).
 */
function settleFirstChunk(deps: DispatchDeps, backend: Backend, model: string, ms: number): void {
  const before = backend.circuit.state;
  backend.circuit.onSuccess();
  observeLatency(backend, ms);
  if (backend.circuit.state !== before) publishBackendState(deps.metrics, backend, model);
}

/**
 * `cancel` stops the call: the request's own by default; a single-flight call (pipeline/cache.ts)
 * passes its flight's, which outlives the request that started it while others still wait for it.
 */
export async function dispatchUnary<T>(
  deps: DispatchDeps,
  ctx: RequestContext,
  pool: Pool,
  call: (backend: Backend, pctx: ProviderCallContext) => Promise<T>,
  cancel: Cancel = ctx.controller,
): Promise<T> {
  const { result } = await withRetries(deps, ctx, pool, cancel, async (backend, p) => {
    const started = performance.now();
    backend.inFlight++;
    const span = attemptSpan(ctx, backend, p.alias);
    // A limit of the attempt's own only when the backend has one (no timer, no cancel otherwise).
    const attempt = backend.config.timeout_ms ? new Attempt(cancel, backend, false) : undefined;
    try {
      const r = await call(backend, callContext(ctx, backend, span, attempt?.cancel ?? cancel));
      attempt?.started();
      attempt?.end();
      span?.ok(resultInfo(r));
      settle(deps, backend, p.alias, undefined, (performance.now() - started) / 1000);
      return r;
    } catch (e) {
      const err = attempt ? attempt.fail(e) : e;
      span?.fail(err);
      settle(deps, backend, p.alias, outcomeOf(cancel, attempt, err), (performance.now() - started) / 1000);
      throw err;
    } finally {
      backend.inFlight--;
    }
  });
  return result;
}

/** `cancel`: as for dispatchUnary. */
export async function dispatchStream<T>(
  deps: DispatchDeps,
  ctx: RequestContext,
  pool: Pool,
  call: (backend: Backend, pctx: ProviderCallContext) => Promise<ProviderStream<T>>,
  cancel: Cancel = ctx.controller,
): Promise<AsyncIterable<T>> {
  interface Opened {
    first: IteratorResult<T>;
    it: AsyncIterator<T>;
    started: number;
    span: AttemptSpan | undefined;
    alias: string;
    reportedUsage: ProviderStream<T>['reportedUsage'];
    attempt: Attempt;
  }
  const { result, backend } = await withRetries<Opened>(deps, ctx, pool, cancel, async (backend, p) => {
    const started = performance.now();
    backend.inFlight++;
    const span = attemptSpan(ctx, backend, p.alias);
    const attempt = new Attempt(cancel, backend);
    try {
      const upstream = await call(backend, callContext(ctx, backend, span, attempt.cancel));
      const it = upstream[Symbol.asyncIterator]();
      // Wait for the first chunk: a failure before it can still be retried elsewhere.
      const first = await it.next();
      attempt.started();
      settleFirstChunk(deps, backend, p.alias, performance.now() - started);
      return { first, it, started, span, alias: p.alias, reportedUsage: upstream.reportedUsage, attempt };
    } catch (e) {
      const err = attempt.fail(e);
      backend.inFlight--;
      span?.fail(err);
      settle(deps, backend, p.alias, outcomeOf(cancel, attempt, err), (performance.now() - started) / 1000);
      throw err;
    }
  });
  const { first, it, started, span, alias, reportedUsage, attempt } = result;
  async function* tracked(): AsyncGenerator<T> {
    let failed: unknown;
    let completed = false;
    try {
      if (!first.done) {
        yield first.value;
        for (;;) {
          const n = await it.next();
          if (n.done) break;
          yield n.value;
        }
      }
      completed = true;
    } catch (err) {
      // A stream the request's own cancellation cut (the client left, its deadline passed, the
      // last reader of a flight went away) did not fail on the backend: counted as aborted below,
      // as when the consumer stops reading.
      if (!attempt.cancel.aborted) failed = err;
      throw err;
    } finally {
      if (!completed) await it.return?.();
      attempt.end();
      // The answering attempt's counts so far, for a stream cut before its usage chunk (run.ts
      // accountedUsage); this runs before the consumers' own cleanup (trackUsage's finally).
      const reported = reportedUsage?.();
      if (reported) ctx.reportedUsage = reported;
      backend.inFlight--;
      const seconds = (performance.now() - started) / 1000;
      if (failed !== undefined) {
        span?.fail(failed);
        settle(deps, backend, alias, failed, seconds, true);
      } else if (completed) {
        span?.ok({ usage: ctx.usage ?? null });
        settle(deps, backend, alias, undefined, seconds, true);
      } else {
        // The client went away: not the backend's fault.
        span?.ok({ usage: ctx.usage ?? null });
        settle(deps, backend, alias, ABORTED, seconds, true);
      }
    }
  }
  return tracked();
}

/** May this pool (and its fallback chain) stream as bytes? Every backend must offer it. */
export function canPassThrough(ctx: RequestContext, pool: Pool, completions: boolean): boolean {
  const has = (p: Pool): boolean =>
    p.backends.every((b) =>
      completions ? b.provider.completionStreamRaw !== undefined : b.provider.chatStreamRaw !== undefined,
    );
  if (!has(pool)) return false;
  for (const alias of ctx.snapshot.config.models[pool.alias]?.fallbacks ?? []) {
    const p = ctx.snapshot.pools.get(alias);
    if (p && !has(p)) return false;
  }
  return true;
}

/** A pass-through stream after dispatch: its first bytes read, the attempt settled by `done`. */
export interface RawDispatched {
  raw: RawSseStream;
  /** The first bytes the upstream sent (already read; the body is paused). */
  first: Buffer;
  /**
   * Settle the attempt exactly once: 'ok' (completed), 'aborted' (the client went away: not the
   * backend's fault) or the error that ended it.
   */
  done(outcome: 'ok' | 'aborted' | { error: unknown }): void;
}

/** Resolve with the first chunk of `body` (then paused), null if it ended empty. */
function firstChunk(body: RawSseStream['body']): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    body.setSink({
      data(c) {
        body.pause();
        // Until the stream's writer takes over, hold everything (an error or the end included).
        body.setSink(undefined);
        resolve(c);
      },
      end() {
        resolve(null);
      },
      error(e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    });
    body.resume();
  });
}

/**
 * dispatchStream for pass-through: the same retries, fallbacks and per-attempt bookkeeping, but the
 * provider hands over bytes. Like dispatchStream it waits for the first bytes (a failure before
 * them, or an error event as the first event, can still be retried elsewhere).
 */
export async function dispatchRawStream(
  deps: DispatchDeps,
  ctx: RequestContext,
  pool: Pool,
  call: (backend: Backend, pctx: ProviderCallContext) => Promise<RawSseStream>,
): Promise<RawDispatched> {
  const { result, backend } = await withRetries(deps, ctx, pool, ctx.controller, async (backend, p) => {
    const started = performance.now();
    backend.inFlight++;
    const span = attemptSpan(ctx, backend, p.alias);
    const attempt = new Attempt(ctx.controller, backend);
    let raw: RawSseStream | undefined;
    try {
      raw = await call(backend, callContext(ctx, backend, span, attempt.cancel));
      let first: Buffer | null;
      try {
        first = await firstChunk(raw.body);
      } catch (err) {
        throw raw.mapError(err);
      }
      attempt.started();
      if (first === null) throw raw.cut();
      const errData = firstEventError(first);
      if (errData !== undefined) throw raw.eventError(errData);
      settleFirstChunk(deps, backend, p.alias, performance.now() - started);
      return { raw, first, started, span, alias: p.alias, attempt };
    } catch (e) {
      const err = attempt.fail(e);
      raw?.body.destroy();
      backend.inFlight--;
      span?.fail(err);
      settle(
        deps,
        backend,
        p.alias,
        outcomeOf(ctx.controller, attempt, err),
        (performance.now() - started) / 1000,
      );
      throw err;
    }
  });
  const { raw, first, started, span, alias, attempt } = result;
  let settled = false;
  return {
    raw,
    first,
    done(outcome) {
      if (settled) return;
      settled = true;
      attempt.end();
      backend.inFlight--;
      const seconds = (performance.now() - started) / 1000;
      if (outcome === 'ok') {
        span?.ok({ usage: ctx.usage ?? null });
        settle(deps, backend, alias, undefined, seconds, true);
      } else if (outcome === 'aborted') {
        span?.ok({ usage: ctx.usage ?? null });
        settle(deps, backend, alias, ABORTED, seconds, true);
      } else {
        span?.fail(outcome.error);
        // A stream the request's own cancellation cut (its deadline passed) is aborted, as on the
        // object path: the attempt's limit no longer applies after the first chunk.
        settle(deps, backend, alias, attempt.cancel.aborted ? ABORTED : outcome.error, seconds, true);
      }
    },
  };
}
