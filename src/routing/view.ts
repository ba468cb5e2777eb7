/** What /ready and GET /admin/backends say about a backend: its state and why. */
import type { Backend } from './pool.js';

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
