/**
 * What /ready, /info, GET /admin/backends and GET /admin/models say about a backend (its state and
 * why) and about a model alias (its fallback chain and which of its members answers now).
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
