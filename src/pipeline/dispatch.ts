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

export interface DispatchDeps {
  metrics: GatewayMetrics;
}

function callContext(ctx: RequestContext, backend: Backend): ProviderCallContext {
  return {
    signal: ctx.controller.signal,
    requestId: ctx.requestId,
    correlationId: ctx.correlationId,
    headers: upstreamHeaders(ctx),
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
  try {
    const result = await call(backend, callContext(ctx, backend));
    deps.metrics.upstreamRequests.labels(backend.id, pool.alias, '200').inc();
    deps.metrics.upstreamDuration
      .labels(backend.id, pool.alias)
      .observe((performance.now() - started) / 1000);
    return result;
  } catch (err) {
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
  try {
    upstream = await call(backend, callContext(ctx, backend));
  } catch (err) {
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
      if (failed !== undefined) recordFailure(deps, backend, pool.alias, failed, seconds);
      else {
        deps.metrics.upstreamRequests
          .labels(backend.id, pool.alias, ctx.controller.signal.aborted ? 'aborted' : '200')
          .inc();
        deps.metrics.upstreamDuration.labels(backend.id, pool.alias).observe(seconds);
      }
    }
  }
  return tracked();
}
