/**
 * The Fastify edge: request ids and correlation ids, security headers, JSON-only bodies with a
 * size limit, gzip for larger non-streaming responses, one error handler producing the OpenAI
 * error shape, and the routes.
 */
import { registerTeamRoutes } from './routes/teams.js';
import { backendView, chainView } from '../routing/view.js';
import { requireAdmin } from './admin-auth.js';
import { ANTHROPIC_PATH, registerAnthropicRoutes } from './routes/anthropic.js';
import { openAIErrorToAnthropic } from '../providers/anthropic/index.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ServerOptions } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import compress from '@fastify/compress';
import { canonicalApiUrl } from '../lib/route-aliases.js';
import type { Gateway } from '../app.js';
import { PorticoError } from '../errors/portico-error.js';
import { acceptCorrelationId, newRequestId } from '../lib/ids.js';
import { afterJournal, finishRequest, recordUsage } from '../pipeline/run.js';
import { edgeContext, exposeTenantRouteMarks } from './edge-context.js';
import { ANONYMOUS_TENANT, UNMATCHED_ENDPOINT } from '../telemetry/metrics.js';
import { toPorticoError } from './errors.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerOpenAIRoutes } from './routes/openai.js';
import { registerResponsesRoutes } from './routes/responses.js';
import { MODELS_PATH, registerModelRoutes, wantsAnthropicShape } from './routes/models.js';
import { registerTenantRoutes } from './routes/tenant.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerLazyDocs } from './docs.js';
import { describeJsonFault } from '../lib/json-error.js';
import {
  edgeClientErrorHandler,
  guardConnections,
  isRefused,
  securityHeadersFor,
  trackRequest,
} from './edge.js';

type Compilers = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type BuildValidator = NonNullable<Compilers['buildValidator']>;
type BuildSerializer = NonNullable<Compilers['buildSerializer']>;
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
type Factory = (...args: unknown[]) => unknown;
/** A compiler factory that requires its module (from fastify's own dependencies) when first called. */
function onFirstUse(module: string): Factory {
  let selector: Factory | undefined;
  return (...args) => {
    selector ??= (fastifyRequire(module) as () => Factory)();
    return selector(...args);
  };
}
/**
 * Fastify's own validator (ajv) and serializer (fast-json-stringify) compilers, required on first
 * use instead of at start-up. No Portico route compiles either: handlers validate with zod, and the
 * admin routes' OpenAPI schemas are documentation only (openapi.ts gives them pass-through
 * compilers). So ajv (~90 files, ~2 MB of RSS measured) stays unloaded unless a route asks. Same
 * compilers with Fastify's options; the one difference is that Fastify then treats them as
 * custom, which only skips lowercasing the keys of header schemas (no route here has one).
 */
const LAZY_COMPILERS: Compilers = {
  buildValidator: onFirstUse('@fastify/ajv-compiler') as unknown as BuildValidator,
  buildSerializer: onFirstUse('@fastify/fast-json-stringify-compiler') as unknown as BuildSerializer,
};

/** How often Node checks every connection against the header and body deadlines. */
const CHECK_INTERVAL_MS = 1000;

/** Response headers a browser client may read (CORS). */
export const CORS_EXPOSED_HEADERS = [
  'x-request-id',
  'x-correlation-id',
  'retry-after',
  'retry-after-ms',
  'x-should-retry',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-portico-upstream-model',
];

/** Routes that still answer during the drain: the probes (/ready says `draining`) and /metrics. */
const DRAIN_ANSWERED = new Set(['/health', '/ready', '/startup', '/metrics']);

const idleClosePending = new WeakSet<FastifyInstance>();
/**
 * Close the server's idle keep-alive connections on the next turn (once Node has detached the
 * finished response from its socket), once however many responses finish in this turn.
 */
function closeIdleSoon(app: FastifyInstance): void {
  if (idleClosePending.has(app)) return;
  idleClosePending.add(app);
  setImmediate(() => {
    idleClosePending.delete(app);
    app.server.closeIdleConnections();
  });
}

export async function buildHttpServer(gw: Gateway): Promise<FastifyInstance> {
  const cfg = gw.snapshot.config.server;
  const opts: FastifyServerOptions & { https?: Record<string, unknown>; http?: ServerOptions } = {
    logger: false,
    schemaController: { compilersFactory: LAZY_COMPILERS },
    bodyLimit: cfg.body_limit_bytes,
    trustProxy: cfg.trust_proxy,
    // During the drain, requests get the catalog's 503 `draining` from the onRequest hook below,
    // not Fastify's own body.
    return503OnClosing: false,
    // On close (drain): idle keep-alive sockets are closed at once; requests and streams in flight
    // finish, and their connections are closed as they end (onResponse below).
    forceCloseConnections: 'idle',
    keepAliveTimeout: 72_000,
    // Our own ids; Fastify's are not used.
    genReqId: () => '',
    // /chat/completions, /v1/models/ and the like reach the canonical /v1 routes.
    rewriteUrl: (req) => canonicalApiUrl(req.url ?? '/'),
    // Router errors (undecodable %-escapes, over-long path segments) in the catalog's shape too.
    frameworkErrors: (error, _request, reply) => {
      const pe = toPorticoError(error);
      void (reply as FastifyReply).code(pe.status).headers(pe.headers).send(pe.toBody());
    },
    // Deadlines for a client to send its request (slow senders cannot pin sockets); Node checks
    // them every connectionsCheckingInterval for all connections at once (no timer per request).
    requestTimeout: cfg.body_timeout_ms,
    http: { connectionsCheckingInterval: CHECK_INTERVAL_MS },
    clientErrorHandler: edgeClientErrorHandler(gw.metrics, {
      headersTimeoutMs: cfg.headers_timeout_ms,
      bodyTimeoutMs: cfg.body_timeout_ms,
      tls: cfg.tls !== undefined,
    }),
  };
  if (cfg.tls) {
    opts.https = {
      cert: readFileSync(cfg.tls.cert_file),
      key: readFileSync(cfg.tls.key_file),
      minVersion: cfg.tls.min_version,
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
    };
  }
  const app = Fastify(opts) as unknown as FastifyInstance;
  const securityHeaders = securityHeadersFor(cfg.tls !== undefined);

  app.decorateRequest('porticoId', '');
  app.decorateRequest('correlationId', '');
  app.decorateRequest('porticoCtx', null);

  app.server.headersTimeout = cfg.headers_timeout_ms;
  guardConnections(
    app.server,
    { maxConnections: cfg.max_connections, maxPerIp: cfg.max_connections_per_ip },
    gw.metrics,
    { tls: cfg.tls !== undefined, trustProxy: cfg.trust_proxy },
  );

  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    if (isRefused(raw.socket)) {
      // Refused at accept time (connection caps): the 503 is already on its way; do no work.
      reply.hijack();
      return;
    }
    trackRequest(raw);
    const id = newRequestId();
    const correlation = acceptCorrelationId(request.headers['x-correlation-id']) ?? id;
    request.porticoId = id;
    request.correlationId = correlation;
    reply.headers(securityHeaders);
    reply.header('x-request-id', id);
    reply.header('x-correlation-id', correlation);
    if (gw.draining) {
      reply.header('connection', 'close');
      // A request that reaches a draining replica (on a keep-alive connection opened before the
      // drain): refused, so the client retries elsewhere. The probes and /metrics still answer
      // (/ready: not ready, `draining`).
      if (!DRAIN_ANSWERED.has(request.routeOptions.url ?? '')) {
        done(
          new PorticoError(
            'draining',
            'This gateway replica is shutting down and takes no new requests. Retry; another replica will answer.',
            { headers: { 'retry-after': '1' } },
          ),
        );
        return;
      }
    }
    // A NUL byte in the path or query (%00) is never a valid id, name or time: refused here so no
    // state store ever sees one (Postgres rejects it with an internal error).
    if (request.url.includes('%00')) {
      done(
        new PorticoError(
          'invalid_request',
          'The URL contains a NUL byte (%00); ids, names and query values cannot contain one.',
        ),
      );
      return;
    }
    done();
  });

  // Account (and journal the ledger record) before the response's bytes go out: once the client
  // has its answer, a crash cannot lose the record. The journal line is written with the other
  // answers finished in this event-loop turn (one write() for all), and the response goes out
  // after that write.
  app.addHook('onSend', (request, reply, payload, done) => {
    // An answer that goes out during the drain tells its client not to reuse the connection (Node
    // then closes it once the answer is written).
    if (gw.draining) reply.header('connection', 'close');
    const ctx = request.porticoCtx;
    if (!ctx) {
      done(null, payload);
      return;
    }
    recordUsage(gw.deps, ctx, reply.statusCode, true);
    let inHook = true;
    afterJournal(gw.deps, () => {
      try {
        done(null, payload);
      } catch (err) {
        // Writing the response threw (a header Node refuses). Called back at once, this is still
        // the hook: Fastify's error handling answers. Called from the journal's flush, nothing is
        // around it: end the connection rather than leave the client waiting for ever.
        if (inHook) throw err;
        gw.logger.error({ err, requestId: ctx.requestId }, 'response could not be written');
        request.raw.socket.destroy();
      }
    });
    inHook = false;
  });

  app.addHook('onResponse', (request, reply, done) => {
    // A keep-alive connection busy when the drain began is idle now that its response (a stream
    // whose headers went out before the drain, say) has ended: close it, or the server's close
    // waits for it until the drain deadline. Node's closeIdleConnections skips connections with a
    // response still being written or a request being received.
    if (gw.draining) closeIdleSoon(app);
    const ctx = request.porticoCtx;
    if (ctx) finishRequest(gw.deps, ctx, reply.statusCode);
    else {
      // Probes, /metrics, admin and console, unknown paths: the seed's http_* series only. The
      // endpoint label is the route pattern (bounded), or _unmatched for paths with no route.
      const endpoint = request.routeOptions.url ?? UNMATCHED_ENDPOINT;
      const status = String(reply.statusCode);
      const seconds = reply.elapsedTime / 1000;
      gw.metrics.child.httpRequests(request.method, endpoint, ANONYMOUS_TENANT, status).inc();
      gw.metrics.child.httpDuration(request.method, endpoint, ANONYMOUS_TENANT).observe(seconds);
    }
    done();
  });

  // JSON only. Anything else is a 415 from Fastify, mapped in the error handler.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch {
      // Where, not what: JSON.parse's own message quotes the body (prompt text), and this message
      // is kept in the request log and the audit file (src/lib/json-error.ts).
      done(
        new PorticoError(
          'invalid_json',
          `The body is not valid JSON: ${describeJsonFault(text)}. Send a JSON object.`,
        ),
        undefined,
      );
    }
  });

  if (cfg.cors.origins.length > 0) {
    // Browser apps: preflights answered (and cached max_age_s) before authentication; the
    // headers a client needs to read (ids, rate limits, retry hints) are exposed.
    // Loaded only when configured: most deployments have no browser clients.
    const { default: cors } = await import('@fastify/cors');
    await app.register(cors, {
      origin: cfg.cors.origins.includes('*') ? '*' : cfg.cors.origins,
      credentials: cfg.cors.credentials,
      maxAge: cfg.cors.max_age_s,
      methods: ['GET', 'POST', 'DELETE', 'PATCH', 'PUT', 'OPTIONS'],
      exposedHeaders: CORS_EXPOSED_HEADERS,
      strictPreflight: false,
    });
  }

  if (cfg.compression.enabled) {
    await app.register(compress, {
      global: true,
      threshold: cfg.compression.threshold_bytes,
      encodings: ['gzip'],
    });
  }

  app.setErrorHandler((err, request, reply) => {
    const pe = toPorticoError(err, request.porticoCtx?.controller.signal);
    // A tenant endpoint's request rejected before its handler ran (415, 413, bad JSON) gets its
    // context here, so onResponse finishes it (request log, stats, metrics) like any other.
    const ctx = edgeContext(gw, request);
    if (ctx) ctx.error = { code: pe.code, message: pe.message };
    if (pe.code === 'internal_error')
      gw.logger.error({ err, requestId: request.porticoId, url: request.url }, 'internal error');
    else if (pe.status >= 500)
      gw.logger.warn({ requestId: request.porticoId, code: pe.code, detail: pe.message }, 'request failed');
    const extra = ctx?.responseHeaders;
    if (extra) reply.headers(extra);
    // The Anthropic-compatible endpoints answer errors in the Messages API's shape (and /v1/models
    // when an Anthropic client asks).
    const path = request.url.split('?')[0] ?? '';
    const anthropic =
      path.startsWith(ANTHROPIC_PATH) || (path.startsWith(MODELS_PATH) && wantsAnthropicShape(request));
    reply
      .code(pe.status)
      .headers(pe.headers)
      .send(anthropic ? openAIErrorToAnthropic(pe) : pe.toBody());
  });

  exposeTenantRouteMarks(app);
  const knownPaths = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const set = knownPaths.get(route.url) ?? new Set<string>();
    methods.forEach((m) => set.add(m));
    knownPaths.set(route.url, set);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = knownPaths.get(path);
    const pe = allowed
      ? new PorticoError(
          'method_not_allowed',
          `${request.method} is not supported on ${path}; use ${[...allowed].filter((m) => m !== 'HEAD').join(', ')}.`,
          {
            headers: { allow: [...allowed].join(', ') },
          },
        )
      : new PorticoError(
          'not_found',
          `No endpoint ${request.method} ${path.slice(0, 200)}. ${
            path === '/admin' || path.startsWith('/admin/')
              ? "The admin API's endpoints: GET /docs (its reference) and docs/admin-api.md."
              : 'See GET /info for the endpoints available to your key.'
          }`,
        );
    reply.code(pe.status).headers(pe.headers).send(pe.toBody());
  });

  registerLazyDocs(app);
  registerHealthRoutes(app, gw);
  registerOpenAIRoutes(app, gw);
  registerModelRoutes(app, gw);
  registerTenantRoutes(app, gw);
  registerAnthropicRoutes(app, gw);
  registerResponsesRoutes(app, gw);
  registerTeamRoutes(app, gw);
  app.get('/admin/backends', async (request) => {
    requireAdmin(gw, request);
    const snap = gw.snapshot;
    return {
      object: 'list',
      data: [...snap.pools].map(([alias, pool]) => ({
        model: alias,
        strategy: pool.strategy,
        backends: pool.backends.map(backendView),
        ...chainView(snap.pools, alias, snap.config.models[alias]?.fallbacks ?? []),
      })),
    };
  });
  registerAdminRoutes(app, gw);
  await registerConsoleRoutes(app, gw);
  return app;
}
