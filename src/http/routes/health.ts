/**
 * Probes: /health (liveness), /ready (config loaded, a backend healthy, the key and tenant store
 * reachable, not draining; details only with the admin token), /startup; and /metrics.
 */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../app.js';
import { backendView, chainView, type BackendView, type ServingView } from '../../routing/view.js';
import { isAdmin } from '../admin-auth.js';

export function registerHealthRoutes(app: FastifyInstance, gw: Gateway): void {
  app.get('/health', async () => ({
    status: 'ok',
    uptime_s: Math.round((Date.now() - gw.startedAt) / 1000),
  }));

  app.get('/startup', async (_req, reply) => {
    if (!gw.ready && !gw.draining) reply.code(503);
    return { started: gw.ready || gw.draining };
  });

  // Unauthenticated probes learn ready or not and why in one word; the per-model backend details
  // (aliases, backend ids, internal addresses, errors) only with the admin token.
  app.get('/ready', async (request, reply) => {
    const snap = gw.snapshot;
    const models: Record<string, BackendView[]> = {};
    // Per model alias: who answers now (a fallback when its own backends are out); null: nobody.
    const serving: Record<string, ServingView | null> = {};
    let usable = 0;
    for (const [alias, pool] of snap.pools) {
      models[alias] = pool.backends.map((b) => {
        const v = backendView(b);
        if (v.state === 'healthy' || v.state === 'half_open') usable++;
        return v;
      });
      serving[alias] = chainView(snap.pools, alias, snap.config.models[alias]?.fallbacks ?? []).serving;
    }
    const reasons: string[] = [];
    if (!gw.ready) reasons.push(gw.draining ? 'draining' : 'starting');
    if (usable === 0) reasons.push('no_healthy_backend');
    // The key and tenant store as last seen (real queries and a probe every 5 s; no query here):
    // without it a key not cached yet, and every admin call, is refused with 503 state_unavailable.
    // Redis is reported, not judged: what its outage does depends on redis_failure_mode.
    const state = gw.tenancy?.state.health();
    if (state?.postgres === false) reasons.push('state_unavailable');
    const ready = reasons.length === 0;
    if (!ready) reply.code(503);
    const reason = reasons[0] ?? 'ok';
    if (!isAdmin(gw, request)) return { ready, reason };
    return {
      ready,
      reason,
      reasons,
      config_version: snap.version,
      config_loaded_at: snap.loadedAt.toISOString(),
      ...(state ? { state } : {}),
      models,
      serving,
    };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', gw.metrics.registry.contentType);
    return gw.metrics.registry.metrics();
  });
}
