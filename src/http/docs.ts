/**
 * /docs (Swagger UI) and /docs/json, /docs/yaml, built on the first request to them.
 *
 * @fastify/swagger, @fastify/swagger-ui (and the @fastify/static it brings) cost ~10 MB of a fresh
 * gateway's memory, for pages an operator opens now and then. So the gateway only records its
 * routes (method, path, their own schema) as they are registered; the first request under /docs
 * imports ./openapi.js, which builds a small Fastify app holding the same routes with the
 * documentation attached and the two plugins registered, and every /docs request is answered by
 * that app through `inject` (no socket). The document is the one the routes had when the
 * gateway started, as before.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import type { LightMyRequestResponse } from 'fastify';
import { PorticoError } from '../errors/portico-error.js';

/** A route of the gateway as the docs app needs it. */
export interface RecordedRoute {
  method: string;
  url: string;
  schema?: FastifySchema;
}

/** Response headers the gateway sets itself when it sends the docs app's answer. */
const NOT_COPIED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date']);

/** Call before the routes are registered: they are recorded as they are added. */
export function registerLazyDocs(app: FastifyInstance): void {
  const routes: RecordedRoute[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || route.url === '/docs' || route.url.startsWith('/docs/')) continue;
      routes.push({ method, url: route.url, ...(route.schema ? { schema: route.schema } : {}) });
    }
  });
  let docsApp: Promise<FastifyInstance> | undefined;
  const serve = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    docsApp ??= import('./openapi.js').then((m) => m.buildDocsApp(routes));
    let res: LightMyRequestResponse;
    try {
      res = await (
        await docsApp
      ).inject({
        method: 'GET',
        url: request.url,
        headers: {
          ...(request.headers['if-none-match'] ? { 'if-none-match': request.headers['if-none-match'] } : {}),
        },
      });
    } catch (err) {
      docsApp = undefined; // built again on the next request
      throw err;
    }
    if (res.statusCode === 404)
      throw new PorticoError(
        'not_found',
        `No page ${request.url.split('?')[0]?.slice(0, 200)} in the API docs: open /docs, or /docs/json for the document.`,
      );
    for (const [name, value] of Object.entries(res.headers))
      if (value !== undefined && !NOT_COPIED.has(name)) reply.header(name, value);
    reply.code(res.statusCode);
    // A redirect (or any answer without a body) goes out without one, not as an empty octet stream.
    return res.rawPayload.length > 0 ? reply.send(res.rawPayload) : reply.send();
  };
  app.get('/docs', serve);
  app.get('/docs/*', serve);
}
