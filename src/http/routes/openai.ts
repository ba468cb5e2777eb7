/** The OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/rerank (models: routes/models.ts). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway } from '../../app.js';
import { extractKey } from '../../pipeline/authenticate.js';
import type { RouteName } from '../../pipeline/context.js';
import { beginTenantRequest, runChat, runCompletion, runEmbeddings, runRerank } from '../../pipeline/run.js';
import type { TenantRuntime } from '../../pipeline/snapshot.js';
import type { RequestContext } from '../../pipeline/context.js';
import { contextFor, handlerSettled } from '../request-context.js';
import { markTenantRoute } from '../edge-context.js';
import { markBypass } from '../../pipeline/cache.js';
import { startRespond } from '../../telemetry/tracing.js';
import { sendPassThrough, sendSse } from '../sse.js';
import { toLegacyChunks, toLegacyResponse, usesLegacyFunctions } from '../../pipeline/legacy-functions.js';

type Handler = (
  ctx: RequestContext,
  tenant: TenantRuntime,
  request: FastifyRequest,
  reply: FastifyReply,
) => Promise<unknown>;

/** Wrap a tenant endpoint: context, authentication, then the route's pipeline. */
export function tenantRoute(gw: Gateway, route: RouteName, endpoint: string, handler: Handler) {
  const run = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const ctx = contextFor(gw, request, reply, route, endpoint);
    try {
      if (route === 'chat' || route === 'completions') markBypass(ctx);
      const tenant = await beginTenantRequest(
        gw.deps,
        ctx,
        extractKey(request.headers.authorization, request.headers['x-api-key']),
      );
      const result = await handler(ctx, tenant, request, reply);
      if (ctx.responseHeaders && !reply.sent) reply.headers(ctx.responseHeaders);
      if (!reply.sent) startRespond(ctx);
      return result;
    } finally {
      handlerSettled(gw, ctx);
    }
  };
  // Marked so that a request the edge rejects before `run` (415, 413, bad JSON) is still logged.
  return markTenantRoute(run, route, endpoint);
}

/** An upstream JSON answer forwarded as bytes (no re-serialisation). */
function sendBytes(reply: FastifyReply, body: Buffer): Buffer {
  reply.header('content-type', 'application/json; charset=utf-8');
  return body;
}

export function registerOpenAIRoutes(app: FastifyInstance, gw: Gateway): void {
  const deps = gw.deps;
  app.post(
    '/v1/chat/completions',
    tenantRoute(gw, 'chat', '/v1/chat/completions', async (ctx, tenant, request, reply) => {
      // Legacy functions/function_call are answered in the shape the client used.
      const legacy = usesLegacyFunctions(request.body);
      const out = await runChat(deps, ctx, tenant, request.body, { passThrough: !legacy });
      if (out.kind === 'json') return legacy ? toLegacyResponse(out.body) : out.body;
      if (out.kind === 'bytes') return sendBytes(reply, out.body);
      if (out.kind === 'raw') await sendPassThrough(deps, reply, ctx, out);
      else await sendSse(deps, reply, ctx, legacy ? toLegacyChunks(out.chunks) : out.chunks);
      return reply;
    }),
  );
  app.post(
    '/v1/completions',
    tenantRoute(gw, 'completions', '/v1/completions', async (ctx, tenant, request, reply) => {
      const out = await runCompletion(deps, ctx, tenant, request.body, { passThrough: true });
      if (out.kind === 'json') return out.body;
      if (out.kind === 'bytes') return sendBytes(reply, out.body);
      if (out.kind === 'raw') await sendPassThrough(deps, reply, ctx, out);
      else await sendSse(deps, reply, ctx, out.chunks);
      return reply;
    }),
  );
  app.post(
    '/v1/embeddings',
    tenantRoute(gw, 'embeddings', '/v1/embeddings', (ctx, tenant, request) =>
      runEmbeddings(deps, ctx, tenant, request.body),
    ),
  );
  app.post(
    '/v1/rerank',
    tenantRoute(gw, 'rerank', '/v1/rerank', (ctx, tenant, request) =>
      runRerank(deps, ctx, tenant, request.body),
    ),
  );
}
