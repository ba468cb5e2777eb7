/**
 * What /ready, /info, GET /admin/backends and GET /admin/models say about a backend (its state and
 * why) and about a model alias (its fallback chain and which of its members answers now; for a
 * split alias, the same for each variant).
 */
import type { Backend, Pool } from './pool.js';

export interface BackendView {
  id: string;
  provider: string;
  /** healthy | ejected (health checks) | open / half_open (circuit breaker) */
  state: 'healthy' | 'ejected' | 'open' | 'half_open';
  reason: string | null;
  circuit: { state: string; consecutive_failures: number; opened_at: string | null; retry_at: string | null };
  in_flight: number;
  /** HTTP backends: upstream sockets open now (null for in-process sim and engine). */
  upstream_connections: number | null;
  weight: number;
  latency_ewma_ms: number | null;
  last_error: string | null;
  last_error_at: string | null;
}

export function backendView(b: Backend): BackendView {
  const c = b.circuit;
  const open = c.state !== 'closed';
  let state: BackendView['state'] = 'healthy';
  let reason: string | null = null;
  if (c.state === 'open') {
    state = 'open';
    reason = `circuit open after ${c.failures} consecutive failures${b.lastError ? `: ${b.lastError}` : ''}`;
  } else if (c.state === 'half_open') {
    state = 'half_open';
    reason = 'circuit half-open: one probe request decides';
  } else if (!b.healthy) {
    state = 'ejected';
    reason = b.healthReason ?? 'failed health checks';
  }
  return {
    id: b.id,
    provider: b.config.provider,
    state,
    reason,
    circuit: {
      state: c.state,
      consecutive_failures: c.failures,
      opened_at: open ? new Date(c.openedAt).toISOString() : null,
      retry_at: c.state === 'open' ? new Date(c.openedAt + c.openMs).toISOString() : null,
    },
    in_flight: b.inFlight,
    upstream_connections: b.provider.upstream?.openConnections ?? null,
    weight: b.weight,
    latency_ewma_ms: b.ewmaMs === undefined ? null : Math.round(b.ewmaMs * 10) / 10,
    last_error: b.lastError ?? null,
    last_error_at: b.lastErrorAt ? new Date(b.lastErrorAt).toISOString() : null,
  };
}

/** Where requests for a model alias go now. */
export interface ServingView {
  /** The model alias (pool) of the chain that answers: the alias itself or one of its fallbacks. */
  model: string;
  /** Its backends that take requests now. */
  backends: string[];
  /** True when a fallback answers (every backend of the alias itself is out of service). */
  fallback: boolean;
  /**
   * True when no backend of the chain is healthy: these are ejected by health checks but their
   * circuit is closed, so requests still try them (and fail over down the chain).
   */
  degraded: boolean;
}

export interface ChainView {
  /** The model aliases tried in order: the alias, then its `fallbacks` (those with a pool). */
  chain: string[];
  /** The alias's configured fallbacks, in order. */
  fallbacks: string[];
  /** Who answers a request now; null when no backend of the chain can take one (503). */
  serving: ServingView | null;
}

/**
 * The fallback chain of `alias` and the member serving now, as dispatch would walk it: each pool in
 * order, its backends whose circuit lets a request through, healthy ones first. A pool whose
 * backends are all ejected (but not circuit-open) is still tried, so it serves only when no later
 * pool has a healthy backend — then it is reported `degraded`.
 */
export function chainView(
  pools: ReadonlyMap<string, Pool>,
  alias: string,
  fallbacks: readonly string[],
  now = Date.now(),
): ChainView {
  const chain = [alias, ...fallbacks].filter((a, i, all) => pools.has(a) && all.indexOf(a) === i);
  let serving: ServingView | null = null;
  let degraded: ServingView | null = null;
  for (const model of chain) {
    const usable = (pools.get(model)?.backends ?? []).filter((b) => b.weight > 0 && b.circuit.allows(now));
    const healthy = usable.filter((b) => b.healthy);
    const fallback = model !== alias;
    if (healthy.length > 0) {
      serving = { model, backends: healthy.map((b) => b.id), fallback, degraded: false };
      break;
    }
    if (usable.length > 0 && !degraded)
      degraded = { model, backends: usable.map((b) => b.id), fallback, degraded: true };
  }
  return { chain, fallbacks: [...fallbacks], serving: serving ?? degraded };
}

/** A variant of a split alias: its weight, and its own chain and serving member. */
export interface VariantView extends ChainView {
  model: string;
  weight: number;
}

/** A model alias as /info and GET /admin/models show it. */
export interface ModelView extends ChainView {
  /** A split alias's variants (null for an alias with backends). */
  variants: VariantView[] | null;
}

interface ModelRoutes {
  fallbacks: readonly string[];
  split?: ReadonlyArray<{ model: string; weight: number }> | undefined;
}

/**
 * chainView for any alias. A split alias has no pool or chain of its own: a request goes to one
 * variant (sticky per caller), then down that variant's chain. So its `serving` merges the
 * variants' — null only when no variant can take a request; the backends answering the variants;
 * `fallback`/`degraded` when any variant's is — and `variants` says who answers each (a variant
 * with `serving: null` fails its callers with 503 while the others answer).
 */
export function modelView(
  pools: ReadonlyMap<string, Pool>,
  models: Readonly<Record<string, ModelRoutes>>,
  alias: string,
  now = Date.now(),
): ModelView {
  const split = models[alias]?.split;
  if (!split) return { ...chainView(pools, alias, models[alias]?.fallbacks ?? [], now), variants: null };
  const variants = split.map((v) => ({
    model: v.model,
    weight: v.weight,
    ...chainView(pools, v.model, models[v.model]?.fallbacks ?? [], now),
  }));
  const live = variants.flatMap((v) => (v.serving ? [v.serving] : []));
  const serving: ServingView | null =
    live.length === 0
      ? null
      : {
          model: alias,
          backends: [...new Set(live.flatMap((s) => s.backends))],
          fallback: live.some((s) => s.fallback),
          degraded: live.some((s) => s.degraded),
        };
  return { chain: [], fallbacks: [...(models[alias]?.fallbacks ?? [])], serving, variants };
}
