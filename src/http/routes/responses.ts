/**
 * The OpenAI Responses API: `POST /v1/responses`, `GET /v1/responses/{id}`,
 * `GET /v1/responses/{id}/input_items`, `DELETE /v1/responses/{id}`. Requests run the same
 * pipeline as /v1/chat/completions (pipeline/responses.ts); stored responses are per tenant.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Gateway } from '../../app.js';
import { PorticoError } from '../../errors/portico-error.js';
import { deleteResponse, loadResponse, runResponses } from '../../pipeline/responses.js';
import { encodeResponsesSse, type ResponseStreamEvent } from '../../providers/openai-responses/index.js';
import { sendSse } from '../sse.js';
import { tenantRoute } from './openai.js';

export const RESPONSES_PATH = '/v1/responses';

function idParam(request: FastifyRequest): string {
  const p = request.params as { id?: unknown };
  return typeof p.id === 'string' ? p.id : '';
}

function queryOf(request: FastifyRequest): Record<string, unknown> {
  const q = request.query;
  return typeof q === 'object' && q !== null ? (q as Record<string, unknown>) : {};
}

export function registerResponsesRoutes(app: FastifyInstance, gw: Gateway): void {
  const deps = gw.deps;
  app.post(
    RESPONSES_PATH,
    tenantRoute(gw, 'responses', RESPONSES_PATH, async (ctx, tenant, request, reply) => {
      const out = await runResponses(deps, ctx, tenant, request.body);
      if (out.kind === 'json') return out.body;
      await sendSse<ResponseStreamEvent>(deps, reply, ctx, out.events, {
        encode: encodeResponsesSse,
        end: '',
        error: (pe) => out.writer.failure(pe),
      });
      return reply;
    }),
  );
  app.get(
    `${RESPONSES_PATH}/:id`,
    tenantRoute(gw, 'responses', `${RESPONSES_PATH}/:id`, async (_ctx, tenant, request) => {
      const q = queryOf(request);
      if (q.stream === 'true')
        throw new PorticoError(
          'invalid_request',
          'stream=true on GET /v1/responses/{id} (replaying a stream) is not supported by Portico',
          { param: 'stream' },
        );
      return (await loadResponse(deps, tenant.id, idParam(request))).response;
    }),
  );
  app.get(
    `${RESPONSES_PATH}/:id/input_items`,
    tenantRoute(gw, 'responses', `${RESPONSES_PATH}/:id/input_items`, async (_ctx, tenant, request) => {
      const doc = await loadResponse(deps, tenant.id, idParam(request));
      const q = queryOf(request);
      // Newest first by default, as OpenAI lists them.
      const items = doc.input_items.map((it, i) => ({
        ...it,
        id: it.id ?? `item_${doc.response.id.slice(5)}_${i}`,
      }));
      if (q.order !== 'asc') items.reverse();
      let start = 0;
      if (typeof q.after === 'string') {
        const i = items.findIndex((x) => x.id === q.after);
        start = i < 0 ? items.length : i + 1;
      }
      const limitRaw = typeof q.limit === 'string' ? Number(q.limit) : 20;
      if (!Number.isInteger(limitRaw) || limitRaw < 1 || limitRaw > 100)
        throw new PorticoError('invalid_request', 'limit must be an integer between 1 and 100', {
          param: 'limit',
        });
      const page = items.slice(start, start + limitRaw);
      return {
        object: 'list',
        data: page,
        first_id: page[0]?.id ?? null,
        last_id: page.at(-1)?.id ?? null,
        has_more: start + limitRaw < items.length,
      };
    }),
  );
  app.delete(
    `${RESPONSES_PATH}/:id`,
    tenantRoute(gw, 'responses', `${RESPONSES_PATH}/:id`, async (_ctx, tenant, request) => {
      const id = idParam(request);
      await deleteResponse(deps, tenant.id, id);
      return { id, object: 'response', deleted: true };
    }),
  );
}
