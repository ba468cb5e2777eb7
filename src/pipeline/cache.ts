/**
 * Stage: cache. Runs after admission and before dispatch for chat and completions.
 * - plan: is this request cacheable (policy, determinism, Cache-Control), and under which key;
 * - serve: answer from L1/L2, or join an identical request in flight (single-flight), or start the
 *   call as the leader, record what comes back (every stream chunk, usage included) and store it.
 *   The call belongs to its flight (cache/flight.ts), not to the leader's request: leader and
 *   followers all read it, each leaves on its own client or deadline, and the call is cancelled
 *   only when no one reads it any more.
 * Every response of a cacheable endpoint says what happened in `x-portico-cache: hit|miss|bypass`
 * (and `x-portico-cache-tier: l1|l2|coalesced` on hits).
 */
import { cacheKey, isDeterministic, type CacheEndpoint } from '../cache/key.js';
import { Flight, type FlightReader } from '../cache/flight.js';
import type { Cancel } from '../lib/abort.js';
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

function markCoalesced(plan: CachePlan, ctx: RequestContext): void {
  markHit(ctx, 'coalesced');
  ctx.cacheCoalesced = true;
  plan.cache.countCoalesced(plan.tenant);
}

/**
 * The flight the leader makes its call in: in the table (identical requests join it), or private
 * with Cache-Control: no-cache (nobody joins; the answer is still stored).
 */
function startFlight(plan: CachePlan): Flight {
  return plan.lookup ? plan.cache.flights.start(plan.key) : new Flight();
}

/** A request that was cancelled (its client left, a deadline passed) before it started to read. */
function throwIfCancelled(ctx: RequestContext): void {
  if (ctx.controller.aborted) throw ctx.controller.reason;
}

/**
 * Wait, as `reader`, until `flight` has `ready` (a chunk) or settled. Rejects with the request's
 * own cancellation reason as soon as it is cancelled: a reader never waits on the call longer than
 * its own client and deadlines allow. The reader has left when this throws.
 */
async function waitFor(
  flight: Flight,
  ctx: RequestContext,
  reader: FlightReader,
  ready: () => boolean,
): Promise<void> {
  try {
    while (!ready() && !flight.settled) await flight.changed(ctx.controller);
  } catch (err) {
    reader.leave();
    throw err;
  }
}

/**
 * Whether the leader's answer may be stored under the plan's key: not when a fallback model gave it
 * (the key is the primary's; its degraded answer would be served as a hit after the primary
 * recovers). The flight's readers still get it.
 */
function storable(plan: CachePlan, leader: RequestContext): boolean {
  return plan.store && leader.fallbackModel === undefined;
}

/**
 * The flight's upstream call (unary), made by the leader with the flight's cancellation: it goes on
 * while anyone still waits for it (the leader's client may leave) and is cancelled when no one does.
 */
async function flyUnary<T>(
  plan: CachePlan,
  flight: Flight,
  call: (cancel: Cancel) => Promise<T>,
  leader: RequestContext,
): Promise<void> {
  let res: T;
  try {
    res = await call(flight.cancel);
  } catch (err) {
    flight.fail(err);
    plan.cache.flights.end(plan.key, flight);
    return;
  }
  try {
    if (storable(plan, leader))
      plan.cache.store(plan.tenant, plan.key, { kind: 'json', body: res, storedAt: Date.now() });
  } finally {
    flight.finish(res);
    plan.cache.flights.end(plan.key, flight);
  }
}

export async function serveUnary<T>(
  plan: CachePlan | undefined,
  ctx: RequestContext,
  call: (cancel: Cancel) => Promise<T>,
): Promise<T> {
  if (!plan) return call(ctx.controller);
  const { cache, key } = plan;
  if (plan.lookup) {
    const hit = await withStage(ctx, 'cache.lookup', () => cache.lookup(plan.tenant, key), {
      'portico.cache.l2': cache.l2Enabled,
    });
    if (hit && hit.entry.kind === 'json') {
      markHit(ctx, hit.tier);
      return structuredClone(hit.entry.body) as T;
    }
    const flight = cache.flights.get(key);
    if (flight) {
      throwIfCancelled(ctx);
      const reader = flight.join(ctx.controller);
      await waitFor(flight, ctx, reader, () => false);
      reader.leave();
      if (flight.failed) throw flight.error;
      markCoalesced(plan, ctx);
      return structuredClone(flight.body) as T;
    }
  }
  throwIfCancelled(ctx);
  const flight = startFlight(plan);
  const reader = flight.join(ctx.controller);
  void flyUnary(plan, flight, call, ctx);
  await waitFor(flight, ctx, reader, () => false);
  reader.leave();
  if (flight.failed) throw flight.error;
  return flight.body as T;
}

async function* replay<C>(chunks: readonly unknown[]): AsyncGenerator<C> {
  for (const c of chunks) yield structuredClone(c) as C;
}

/**
 * One reader's stream: the chunks recorded so far, then each as it arrives. Ends when the request
 * is cancelled (its client left, its deadline passed) without waiting for the call.
 */
async function* read<C>(flight: Flight, ctx: RequestContext, reader: FlightReader): AsyncGenerator<C> {
  const cancel = ctx.controller;
  try {
    for (let i = 0; ;) {
      if (cancel.aborted) throw cancel.reason;
      if (i < flight.chunks.length) yield structuredClone(flight.chunks[i++]) as C;
      else if (flight.done) return;
      else if (flight.failed) throw flight.error;
      else await flight.changed(cancel);
    }
  } finally {
    reader.leave();
  }
}

/**
 * The flight's upstream call, made by the leader with the flight's cancellation and read to its
 * end into the flight, whoever still reads it; stored once complete. Stops when no one reads.
 */
async function fly<C>(
  plan: CachePlan,
  flight: Flight,
  call: (cancel: Cancel) => Promise<AsyncIterable<C>>,
  leader: RequestContext,
): Promise<void> {
  let completed = false;
  try {
    const upstream = await call(flight.cancel);
    for await (const c of upstream) {
      if (flight.cancel.aborted) break;
      flight.push(c);
    }
    completed = !flight.cancel.aborted;
  } catch (err) {
    flight.fail(err);
  }
  try {
    if (completed && storable(plan, leader))
      plan.cache.store(plan.tenant, plan.key, {
        kind: 'stream',
        chunks: flight.chunks,
        storedAt: Date.now(),
      });
  } finally {
    if (completed) flight.finish();
    else if (!flight.failed) flight.fail(flight.cancel.reason);
    plan.cache.flights.end(plan.key, flight);
  }
}

export async function serveStream<C>(
  plan: CachePlan | undefined,
  ctx: RequestContext,
  call: (cancel: Cancel) => Promise<AsyncIterable<C>>,
): Promise<AsyncIterable<C>> {
  if (!plan) return call(ctx.controller);
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
      throwIfCancelled(ctx);
      const reader = flight.join(ctx.controller);
      // As for the leader, whose dispatch waits for the first chunk: a failure before it is an
      // error response with its own status, not an error event after a 200.
      await waitFor(flight, ctx, reader, () => flight.chunks.length > 0);
      if (flight.chunks.length === 0 && flight.failed) {
        reader.leave();
        throw flight.error;
      }
      markCoalesced(plan, ctx);
      return read<C>(flight, ctx, reader);
    }
  }
  throwIfCancelled(ctx);
  const flight = startFlight(plan);
  const reader = flight.join(ctx.controller);
  void fly(plan, flight, call, ctx);
  await waitFor(flight, ctx, reader, () => flight.chunks.length > 0);
  if (flight.chunks.length === 0 && flight.failed) {
    reader.leave();
    throw flight.error;
  }
  return read<C>(flight, ctx, reader);
}
