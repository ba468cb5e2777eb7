/**
 * Stage: cache. Runs after admission and before dispatch for chat and completions.
 * - plan: is this request cacheable (policy, determinism, Cache-Control), and under which key;
 * - serve: answer from L1/L2, or join an identical request in flight (single-flight), or make the
 *   call as the leader, record what comes back (every stream chunk, usage included) and store it.
 * Every response of a cacheable endpoint says what happened in `x-portico-cache: hit|miss|bypass`
 * (and `x-portico-cache-tier: l1|l2|coalesced` on hits).
 */
import { isPorticoError, PorticoError } from '../errors/portico-error.js';
import { cacheKey, isDeterministic, type CacheEndpoint } from '../cache/key.js';
import type { Flight } from '../cache/flight.js';
import type { ResponseCache } from '../cache/response-cache.js';
import type { RequestContext } from './context.js';
import type { TenantRuntime } from './snapshot.js';
import { withStage } from '../telemetry/tracing.js';

export const CACHE_HEADER = 'x-portico-cache';
export const CACHE_TIER_HEADER = 'x-portico-cache-tier';

export interface CachePlan {
  cache: ResponseCache;
  tenant: string;
  key: string;
  /** Look up (and join flights); false with Cache-Control: no-cache. */
  lookup: boolean;
  /** Store the answer; false with Cache-Control: no-store. */
  store: boolean;
}

function setHeaders(ctx: RequestContext, h: Record<string, string>): void {
  ctx.responseHeaders = ctx.responseHeaders ? Object.assign(ctx.responseHeaders, h) : h;
}

/** Mark a cacheable endpoint's response as not served by the cache (the default until planned). */
export function markBypass(ctx: RequestContext): void {
  if (ctx.responseHeaders) ctx.responseHeaders[CACHE_HEADER] = 'bypass';
  else ctx.responseHeaders = { [CACHE_HEADER]: 'bypass' };
}

function directives(header: string | undefined): { noCache: boolean; noStore: boolean } {
  if (!header) return { noCache: false, noStore: false };
  const parts = header
    .toLowerCase()
    .split(',')
    .map((p) => p.trim());
  return { noCache: parts.includes('no-cache'), noStore: parts.includes('no-store') };
}

export function planCache(
  cache: ResponseCache | undefined,
  ctx: RequestContext,
  tenant: TenantRuntime,
  endpoint: CacheEndpoint,
  request: { temperature?: number | null; seed?: number | null; stream?: boolean | null },
): CachePlan | undefined {
  const cfg = ctx.snapshot.config.cache;
  const models = ctx.snapshot.config.models;
  const model = ctx.model ? models[ctx.model] : undefined;
  // An alias that splits (A/B) answers from the variant picked for this request: the variant is
  // what the entry is for (keyed by it), and its own cache settings apply before the alias's.
  const variant = ctx.variant !== undefined && ctx.variant !== ctx.model ? models[ctx.variant] : undefined;
  markBypass(ctx);
  if (
    !cache ||
    !cfg.enabled ||
    tenant.cache?.enabled === false ||
    model?.cache?.enabled === false ||
    variant?.cache?.enabled === false
  )
    return;
  const deterministicOnly =
    tenant.cache?.deterministic_only ??
    variant?.cache?.deterministic_only ??
    model?.cache?.deterministic_only ??
    cfg.deterministic_only;
  if (deterministicOnly && !isDeterministic(request)) return;
  const { noCache, noStore } = directives(ctx.cacheControl);
  if (noCache && noStore) return;
  setHeaders(ctx, { [CACHE_HEADER]: 'miss' });
  return {
    cache,
    tenant: tenant.id,
    key: cacheKey(tenant.id, ctx.variant ?? ctx.model ?? '', endpoint, request),
    lookup: !noCache,
    store: !noStore,
  };
}

function markHit(ctx: RequestContext, tier: 'l1' | 'l2' | 'coalesced'): void {
  ctx.cacheHit = tier;
  setHeaders(ctx, { [CACHE_HEADER]: 'hit', [CACHE_TIER_HEADER]: tier });
}

/**
 * The leader's client went away: followers should make their own call rather than fail. A plain
 * AbortError is the leader's own signal too (a retry's back-off sleep, an in-process backend):
 * upstream timeouts and failures arrive as PorticoErrors with their own codes.
 */
function leaderAbandoned(err: unknown): boolean {
  if (isPorticoError(err)) return err.code === 'client_closed_request';
  return err instanceof Error && err.name === 'AbortError';
}

function abandoned(): PorticoError {
  return new PorticoError('client_closed_request', 'The request this one was joined to was cancelled.');
}

/** The flight that took over from an abandoned one, if another follower started it already. */
function nextFlight(plan: CachePlan, abandonedFlight: Flight): Flight | undefined {
  const next = plan.cache.flights.get(plan.key);
  return next === abandonedFlight || next?.failed ? undefined : next;
}

async function settled(flight: Flight): Promise<void> {
  while (!flight.done && !flight.failed) await flight.changed();
}

export async function serveUnary<T>(
  plan: CachePlan | undefined,
  ctx: RequestContext,
  call: () => Promise<T>,
): Promise<T> {
  if (!plan) return call();
  const { cache, key } = plan;
  if (plan.lookup) {
    const hit = await withStage(ctx, 'cache.lookup', () => cache.lookup(plan.tenant, key), {
      'portico.cache.l2': cache.l2Enabled,
    });
    if (hit && hit.entry.kind === 'json') {
      markHit(ctx, hit.tier);
      return structuredClone(hit.entry.body) as T;
    }
    for (let flight = cache.flights.get(key); flight; flight = nextFlight(plan, flight)) {
      await settled(flight);
      if (flight.done) {
        markHit(ctx, 'coalesced');
        ctx.cacheCoalesced = true;
        cache.countCoalesced(plan.tenant);
        return structuredClone(flight.body) as T;
      }
      if (!leaderAbandoned(flight.error)) throw flight.error;
      // The leader's client left: the first follower to wake leads a new call (below, before any
      // await), and the others join that one instead of each calling upstream.
    }
  }
  const flight = plan.lookup ? cache.flights.start(key) : undefined;
  try {
    const res = await call();
    if (plan.store) cache.store(plan.tenant, key, { kind: 'json', body: res, storedAt: Date.now() });
    flight?.finish(res);
    return res;
  } catch (err) {
    flight?.fail(err);
    throw err;
  } finally {
    if (flight) cache.flights.end(key, flight);
  }
}

async function* replay<C>(chunks: readonly unknown[]): AsyncGenerator<C> {
  for (const c of chunks) yield structuredClone(c) as C;
}

async function* follow<C>(
  plan: CachePlan,
  ctx: RequestContext,
  first: Flight,
  call: () => Promise<AsyncIterable<C>>,
): AsyncGenerator<C> {
  let flight = first;
  let i = 0;
  for (;;) {
    if (i < flight.chunks.length) {
      yield structuredClone(flight.chunks[i++]) as C;
    } else if (flight.done) {
      return;
    } else if (flight.failed) {
      if (i === 0 && leaderAbandoned(flight.error)) {
        // Nothing reached this client yet: join the call another follower took over with, or be
        // the one that takes over (the flight is started before any await, so the followers that
        // wake after this one join it instead of each calling upstream).
        const next = nextFlight(plan, flight);
        if (next) {
          flight = next;
          continue;
        }
        ctx.cacheHit = undefined;
        ctx.cacheCoalesced = false;
        if (ctx.responseHeaders) {
          ctx.responseHeaders[CACHE_HEADER] = 'miss';
          delete ctx.responseHeaders[CACHE_TIER_HEADER];
        }
        yield* await leadCall(plan, call);
        return;
      }
      throw flight.error;
    } else {
      await flight.changed();
    }
  }
}

async function* lead<C>(
  plan: CachePlan,
  flight: Flight | undefined,
  upstream: AsyncIterable<C>,
): AsyncGenerator<C> {
  const captured: unknown[] = [];
  let completed = false;
  try {
    for await (const c of upstream) {
      // Later stages may edit the chunk they get (e.g. hide usage); keep our own copy.
      const copy = structuredClone(c);
      captured.push(copy);
      flight?.push(copy);
      yield c;
    }
    completed = true;
  } catch (err) {
    flight?.fail(err);
    throw err;
  } finally {
    if (completed) {
      if (plan.store)
        plan.cache.store(plan.tenant, plan.key, { kind: 'stream', chunks: captured, storedAt: Date.now() });
      flight?.finish();
    } else if (flight && !flight.failed) {
      flight.fail(abandoned());
    }
    if (flight) plan.cache.flights.end(plan.key, flight);
  }
}

export async function serveStream<C>(
  plan: CachePlan | undefined,
  ctx: RequestContext,
  call: () => Promise<AsyncIterable<C>>,
): Promise<AsyncIterable<C>> {
  if (!plan) return call();
  const { cache, key } = plan;
  if (plan.lookup) {
    const hit = await withStage(ctx, 'cache.lookup', () => cache.lookup(plan.tenant, key), {
      'portico.cache.l2': cache.l2Enabled,
    });
    if (hit && hit.entry.kind === 'stream') {
      markHit(ctx, hit.tier);
      return replay<C>(hit.entry.chunks);
    }
    const flight = cache.flights.get(key);
    if (flight) {
      markHit(ctx, 'coalesced');
      ctx.cacheCoalesced = true;
      cache.countCoalesced(plan.tenant);
      return follow(plan, ctx, flight, call);
    }
  }
  return leadCall(plan, call);
}

/** Make the call as the leader: the flight is in the table before the first await. */
async function leadCall<C>(
  plan: CachePlan,
  call: () => Promise<AsyncIterable<C>>,
): Promise<AsyncIterable<C>> {
  const { cache, key } = plan;
  const flight = plan.lookup ? cache.flights.start(key) : undefined;
  let upstream: AsyncIterable<C>;
  try {
    upstream = await call();
  } catch (err) {
    if (flight) {
      flight.fail(err);
      cache.flights.end(key, flight);
    }
    throw err;
  }
  return lead(plan, flight, upstream);
}
