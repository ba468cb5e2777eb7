/**
 * What the web console needs beyond the tenants/keys/usage admin API (all behind the admin token):
 *
 * - `GET /admin/stats`: live numbers from an in-process sliding window (no Prometheus needed);
 * - `GET /admin/requests`, `GET /admin/requests/:id`: the latest finished requests (ring buffer);
 * - `GET /admin/models`: every model alias with its pool of backends (the playground's choices);
 * - `POST /admin/playground`: one question as a chosen tenant, streamed as SSE. It runs the real
 *   pipeline — request-rate limits, quotas, prompt shaping, routing, metrics, ledger — exactly like
 *   a request with one of the tenant's keys; there is no private path around tenancy.
 *
 * and the console itself, static files under `/console/` (no data in them).
 * Both in-process collectors are fed by one finish hook, O(1) per request.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gateway } from '../../app.js';
import { backendView, modelView } from '../../routing/view.js';
import { PorticoError } from '../../errors/portico-error.js';
import { StateInvalidInputError } from '../../state/errors.js';
import { formatPath } from '../../config/load.js';
import { admitRequestRate } from '../../pipeline/admit.js';
import { enterTenant, runChat } from '../../pipeline/run.js';
import type { TenantRuntime } from '../../pipeline/snapshot.js';
import { ANONYMOUS_TENANT, UNKNOWN_MODEL } from '../../telemetry/metrics.js';
import { LiveStats } from '../../telemetry/live-stats.js';
import { RequestLog, recordFromContext } from '../../telemetry/request-log.js';
import { requireAdmin } from '../admin-auth.js';
import { contextFor, handlerSettled } from '../request-context.js';
import { sendSse } from '../sse.js';
import { packageRoot } from '../../lib/package-root.js';

/** Where `npm run build` puts the console (dist/console); the same path from src/ and from dist/. */
export const CONSOLE_DIR = join(packageRoot(), 'dist/console/');

/** A path under /console/ that names no file of the console (or climbs out of it). */
function consoleMiss(url: string): PorticoError {
  const path = url.split('?')[0] ?? '';
  return new PorticoError('not_found', `No console file ${path.slice(0, 200)}. The console is at /console/.`);
}

/**
 * The console's static files under /console/ from `root`. A path that would climb out of it
 * (`..`, also spelt `%2e%2e` or behind a `%5c` backslash) is refused by @fastify/send with a bare
 * 403 "Forbidden"; it is answered like any other miss there: 404 not_found (review, 2026-12).
 */
export async function registerConsoleFiles(app: FastifyInstance, root: string): Promise<void> {
  app.get('/console', (_request, reply) => reply.redirect('/console/', 301));
  // Imported only when the console is on (a fresh gateway without it does not load it).
  const { default: fastifyStatic } = await import('@fastify/static');
  await app.register(async (scope) => {
    // What this handler throws goes to the server's error handler (the OpenAI error shape).
    scope.setErrorHandler((err, request) => {
      const status = (err as { statusCode?: unknown }).statusCode;
      throw status === 403 || status === 404 ? consoleMiss(request.url) : err;
    });
    await scope.register(fastifyStatic, {
      root,
      prefix: '/console/',
      decorateReply: false,
      cacheControl: false,
      setHeaders: (reply, path) => {
        reply.header('content-security-policy', CONSOLE_CSP);
        // Hashed assets can be cached for ever; index.html must be revalidated.
        reply.header(
          'cache-control',
          path.endsWith('.html') ? 'no-cache' : 'public, max-age=31536000, immutable',
        );
      },
    });
  });
}

/** The console loads only its own files and talks only to this origin. */
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // uPlot positions its legend and cursor with inline styles.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export const StatsQuery = z.strictObject({
  window: z.coerce.number().int().min(5).max(290).default(60),
  step: z.coerce.number().int().min(1).max(60).default(5),
});
export const RequestsQuery = z.strictObject({
  tenant: z.string().max(100).optional(),
  model: z.string().max(200).optional(),
  status: z
    .string()
    .regex(/^(all|ok|error|[1-5]xx|[1-5]\d\d)?$/i, 'use a status (429), a class (4xx) or ok/error')
    .optional(),
  request_id: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export const PlaygroundBody = z.strictObject({
  tenant: z.string().min(1).max(100),
  model: z.string().min(1).max(200).optional(),
  question: z.string().min(1).max(20_000),
  max_tokens: z.number().int().min(1).max(32_768).optional(),
  /** Sticky key for an A/B split alias (like `user` on /v1/chat/completions). */
  user: z.string().min(1).max(200).optional(),
});

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const first = r.error.issues[0];
    const path = formatPath(first?.path ?? []);
    throw new PorticoError('invalid_request', `${path ? path + ': ' : ''}${first?.message ?? 'invalid'}`, {
      param: path || null,
    });
  }
  return r.data;
}

export interface ConsoleCollectors {
  stats: LiveStats;
  requests: RequestLog;
}

/** Create the collectors and hook them onto the pipeline's finish (once per gateway). */
export function attachCollectors(gw: Gateway, requestLogSize = 1000): ConsoleCollectors {
  const stats = new LiveStats();
  const requests = new RequestLog(requestLogSize);
  gw.deps.onFinish.push((ctx, status) => {
    const now = Date.now();
    const rec = recordFromContext(ctx, status, now);
    requests.add(rec);
    stats.record({
      tenant: ctx.tenant?.id ?? ANONYMOUS_TENANT,
      model: ctx.model ?? UNKNOWN_MODEL,
      backend: ctx.backend,
      status,
      latencyMs: rec.latency_ms,
      tokensIn: rec.tokens_in,
      tokensOut: rec.tokens_out,
      costUsd: rec.cost_usd,
    });
  });
  return { stats, requests };
}

async function tenantById(gw: Gateway, id: string): Promise<TenantRuntime> {
  const snapshot = gw.snapshot;
  let t: TenantRuntime | undefined;
  try {
    t = gw.tenancy ? await gw.tenancy.tenant(id, snapshot) : snapshot.tenants.get(id);
  } catch (err) {
    // The store's own field is `id`; the request's is `tenant`.
    if (err instanceof StateInvalidInputError)
      throw new PorticoError('invalid_request', `tenant: ${err.message.replace(/^id /, '')}.`, {
        param: 'tenant',
      });
    throw err;
  }
  if (!t) throw new PorticoError('not_found', `No tenant "${id.slice(0, 80)}".`, { param: 'tenant' });
  return t;
}

export async function registerConsoleRoutes(app: FastifyInstance, gw: Gateway): Promise<void> {
  const adminCfg = gw.snapshot.config.admin;
  const { stats, requests } = attachCollectors(gw, adminCfg.request_log_size);

  app.get('/admin/stats', async (request) => {
    requireAdmin(gw, request);
    const q = parse(StatsQuery, request.query);
    return stats.snapshot(q.window, q.step);
  });

  app.get('/admin/requests', async (request) => {
    requireAdmin(gw, request);
    const q = parse(RequestsQuery, request.query);
    return { object: 'list', capacity: requests.capacity, data: requests.query(q) };
  });

  app.get<{ Params: { id: string } }>('/admin/requests/:id', async (request) => {
    requireAdmin(gw, request);
    const rec = requests.get(request.params.id);
    if (!rec)
      throw new PorticoError(
        'not_found',
        `No request "${request.params.id.slice(0, 80)}" among the latest ${requests.capacity}.`,
      );
    return rec;
  });

  app.get('/admin/models', async (request) => {
    requireAdmin(gw, request);
    const snap = gw.snapshot;
    return {
      object: 'list',
      data: Object.entries(snap.config.models).map(([alias, m]) => {
        const pool = snap.pools.get(alias);
        const { chain, fallbacks, serving, variants } = modelView(snap.pools, snap.config.models, alias);
        return {
          id: alias,
          strategy: pool?.strategy ?? null,
          pricing: m.pricing ?? null,
          split: m.split ?? null,
          fallbacks,
          chain,
          serving: pool || variants ? serving : null,
          variants,
          fallback_for: Object.entries(snap.config.models)
            .filter(([, other]) => other.fallbacks.includes(alias))
            .map(([a]) => a),
          backends: (pool?.backends ?? []).map((b) => ({
            ...backendView(b),
            model: b.upstreamModel,
            healthy: b.healthy,
          })),
        };
      }),
    };
  });

  app.post('/admin/playground', async (request, reply) => {
    requireAdmin(gw, request);
    const body = parse(PlaygroundBody, request.body);
    const ctx = contextFor(gw, request, reply, 'chat', '/admin/playground');
    try {
      const tenant = await tenantById(gw, body.tenant);
      // As beginTenantRequest does after authenticating a key: the tenant is the chosen one.
      enterTenant(gw.deps, ctx, tenant);
      await admitRequestRate(gw.deps, ctx, tenant, undefined);
      const model = body.model ?? tenant.defaultModel;
      if (!model)
        throw new PorticoError('model_not_found', `Tenant "${tenant.id}" has no default model; pick one.`, {
          param: 'model',
        });
      const out = await runChat(gw.deps, ctx, tenant, {
        model,
        messages: [{ role: 'user', content: body.question }],
        stream: true,
        stream_options: { include_usage: true },
        ...(body.max_tokens !== undefined ? { max_tokens: body.max_tokens } : {}),
        ...(body.user !== undefined ? { user: body.user } : {}),
      });
      if (out.kind !== 'stream') throw new PorticoError('internal_error', 'expected a stream');
      await sendSse(gw.deps, reply, ctx, out.chunks);
      return reply;
    } finally {
      // A client that left before the stream began gets no onResponse: finished here (499).
      handlerSettled(gw, ctx);
    }
  });

  if (!adminCfg.console) return;
  if (existsSync(`${CONSOLE_DIR}index.html`)) {
    await registerConsoleFiles(app, CONSOLE_DIR);
  } else {
    const missing = (): never => {
      throw new PorticoError(
        'not_found',
        'The web console is not built in this installation: run "npm run build" (it builds dist/console).',
      );
    };
    app.get('/console', missing);
    app.get('/console/*', missing);
  }
}
