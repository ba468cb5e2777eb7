/**
 * Requests that the edge answers before a route's handler runs — a body of the wrong media type
 * (415), too large (413), not JSON (400) — never get the context that the handler builds, so they
 * skipped the finish stage: no request log, live stats or portico_requests_total for them. Tenant
 * endpoints are marked with their route name here, so the error handler can give such a request
 * the context it would have had, and it finishes like any other.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Gateway } from '../app.js';
import { createContext, type RequestContext, type RouteName } from '../pipeline/context.js';

interface TenantRouteMark {
  route: RouteName;
  endpoint: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on tenant endpoints (from their handler's mark, see markTenantRoute). */
    porticoTenantRoute?: TenantRouteMark;
  }
}

const TENANT_ROUTE = Symbol('portico.tenantRoute');

interface Marked {
  [TENANT_ROUTE]?: TenantRouteMark;
}

/** Mark a route handler as a tenant endpoint (its requests belong in the request log). */
export function markTenantRoute<F extends object>(handler: F, route: RouteName, endpoint: string): F {
  (handler as Marked)[TENANT_ROUTE] = { route, endpoint };
  return handler;
}

/**
 * Copy each marked handler's mark into its route's config, where a request can read it (Fastify
 * keeps a bound copy of the handler, without the mark). Register before the routes.
 */
export function exposeTenantRouteMarks(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const mark = (route.handler as Marked)[TENANT_ROUTE];
    if (mark) route.config = { ...route.config, porticoTenantRoute: mark };
  });
}

/**
 * The request's context: the one its handler made, or — for a tenant endpoint whose handler never
 * ran — a new one (no tenant: the key was not read). Null for operator endpoints (admin, probes).
 */
export function edgeContext(gw: Gateway, request: FastifyRequest): RequestContext | null {
  if (request.porticoCtx) return request.porticoCtx;
  const mark = request.routeOptions.config.porticoTenantRoute;
  if (!mark) return null;
  const ctx = createContext({
    requestId: request.porticoId,
    correlationId: request.correlationId,
    route: mark.route,
    method: request.method,
    endpoint: mark.endpoint,
    clientIp: request.ip,
    snapshot: gw.snapshot,
  });
  request.porticoCtx = ctx;
  return ctx;
}
