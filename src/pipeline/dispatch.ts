/**
 * Stage: dispatch. Picks a backend from the pool and makes the provider call, recording upstream
 * metrics and in-flight counts. Resilience wrappers (retries, circuit breakers, fallbacks) compose
 * around `attempt` in routing/.
 */
import { PorticoError, isPorticoError } from '../errors/portico-error.js';
import type { Backend, Pool } from '../routing/pool.js';
import type { ProviderCallContext, ProviderStream } from '../providers/spec.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
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

function callContext(ctx: RequestContext, backend: Backend, span?: AttemptSpan): ProviderCallContext {
  return {
    signal: ctx.controller.signal,
    requestId: ctx.requestId,
    correlationId: ctx.correlationId,
    headers: span ? { ...upstreamHeaders(ctx), ...span.headers } : upstreamHeaders(ctx),
    ...(backend.config.timeout_ms ? { timeoutMs: backend.config.timeout_ms } : {}),
  };
}

function pickBackend(ctx: RequestContext, pool: Pool): Backend {
  const backend = pool.pick();
  if (!backend) {
    throw new PorticoError(
      'upstream_unavailable',
      `No backend of model "${pool.alias}" is available right now. Retry shortly.`,
      {
        headers: { 'retry-after': '1' },
      },
    );
  }
  ctx.backend = backend.id;
  return backend;
}

function failureStatus(err: unknown): string {
  if (!isPorticoError(err)) return 'error';
  const up = err.upstream;
  if (up?.status !== undefined) return String(up.status);
  if (up) return up.class;
  return err.code === 'client_closed_request' ? 'aborted' : String(err.status);
}

function recordFailure(
  deps: DispatchDeps,
  backend: Backend,
  model: string,
  err: unknown,
  seconds: number,
): void {
  const status = failureStatus(err);
  deps.metrics.upstreamRequests.labels(backend.id, model, status).inc();
  deps.metrics.upstreamDuration.labels(backend.id, model).observe(seconds);
  if (isPorticoError(err) && err.upstream) {
    const cls =
      err.upstream.class === 'status'
        ? err.upstream.status === 429
          ? 'status_429'
          : `status_${Math.floor((err.upstream.status ?? 500) / 100)}xx`
        : err.upstream.class;
    deps.metrics.upstreamErrors.labels(backend.id, model, cls).inc();
    backend.lastError = err.message;
  }
}

export async function dispatchUnary<T>(
  deps: DispatchDeps,
  ctx: RequestContext,
  pool: Pool,
  call: (backend: Backend, pctx: ProviderCallContext) => Promise<T>,
): Promise<T> {
  const backend = pickBackend(ctx, pool);
  const started = performance.now();
  backend.inFlight++;
  const span = attemptSpan(ctx, backend, pool.alias);
  try {
    const result = await call(backend, callContext(ctx, backend, span));
    span?.ok(resultInfo(result));
    deps.metrics.upstreamRequests.labels(backend.id, pool.alias, '200').inc();
    deps.metrics.upstreamDuration
      .labels(backend.id, pool.alias)
      .observe((performance.now() - started) / 1000);
    return result;
  } catch (err) {
    span?.fail(err);
    recordFailure(deps, backend, pool.alias, err, (performance.now() - started) / 1000);
    throw err;
  } finally {
    backend.inFlight--;
  }
}

export async function dispatchStream<T>(
  deps: DispatchDeps,
  ctx: RequestContext,
  pool: Pool,
  call: (backend: Backend, pctx: ProviderCallContext) => Promise<ProviderStream<T>>,
): Promise<AsyncIterable<T>> {
  const backend = pickBackend(ctx, pool);
  const started = performance.now();
  backend.inFlight++;
  let upstream: ProviderStream<T>;
  const span = attemptSpan(ctx, backend, pool.alias);
  try {
    upstream = await call(backend, callContext(ctx, backend, span));
  } catch (err) {
    span?.fail(err);
    backend.inFlight--;
    recordFailure(deps, backend, pool.alias, err, (performance.now() - started) / 1000);
    throw err;
  }
  async function* tracked(): AsyncGenerator<T> {
    let failed: unknown;
    try {
      yield* upstream;
    } catch (err) {
      failed = err;
      throw err;
    } finally {
      backend.inFlight--;
      const seconds = (performance.now() - started) / 1000;
      if (failed !== undefined) {
        span?.fail(failed);
        recordFailure(deps, backend, pool.alias, failed, seconds);
      } else {
        span?.ok({ usage: ctx.usage ?? null });
        deps.metrics.upstreamRequests
          .labels(backend.id, pool.alias, ctx.controller.signal.aborted ? 'aborted' : '200')
          .inc();
        deps.metrics.upstreamDuration.labels(backend.id, pool.alias).observe(seconds);
      }
    }
  }
  return tracked();
}
