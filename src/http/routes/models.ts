/**
 * `GET /v1/models` and `GET /v1/models/{id}`: the models this tenant may use. A model the tenant may
 * not use looks exactly like an unknown one (404 model_not_found), so keys cannot probe the config.
 * Anthropic clients (they always send `anthropic-version`) get Anthropic's shapes: `{data, has_more,
 * first_id, last_id}` with `{type: "model", id, display_name, created_at}` items.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Gateway } from '../../app.js';
import { PorticoError } from '../../errors/portico-error.js';
import { tenantModels } from '../../pipeline/resolve-model.js';
import { tenantRoute } from './openai.js';

export const MODELS_PATH = '/v1/models';

/** Does this request come from an Anthropic client? */
export function wantsAnthropicShape(request: FastifyRequest): boolean {
  return request.headers['anthropic-version'] !== undefined;
}

export function registerModelRoutes(app: FastifyInstance, gw: Gateway): void {
  const item = (request: FastifyRequest, id: string) => {
    const loaded = gw.snapshot.loadedAt;
    return wantsAnthropicShape(request)
      ? { type: 'model', id, display_name: id, created_at: loaded.toISOString() }
      : { id, object: 'model', created: Math.floor(loaded.getTime() / 1000), owned_by: 'portico' };
  };
  app.get(
    MODELS_PATH,
    tenantRoute(gw, 'models', MODELS_PATH, async (ctx, tenant, request) => {
      const data = tenantModels(ctx, tenant).map((id) => item(request, id));
      if (!wantsAnthropicShape(request)) return { object: 'list', data };
      return {
        data,
        has_more: false,
        first_id: data[0]?.id ?? null,
        last_id: data[data.length - 1]?.id ?? null,
      };
    }),
  );
  app.get(
    `${MODELS_PATH}/:id`,
    tenantRoute(gw, 'models', `${MODELS_PATH}/:id`, async (ctx, tenant, request) => {
      const id = (request.params as { id: string }).id;
      if (!tenantModels(ctx, tenant).includes(id))
        throw new PorticoError(
          'model_not_found',
          `The model "${id.slice(0, 100)}" does not exist or your key may not use it. GET /v1/models lists yours.`,
          { param: 'model' },
        );
      return item(request, id);
    }),
  );
}
