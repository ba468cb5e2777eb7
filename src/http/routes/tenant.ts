/** The seeds' simple tenant endpoints: POST /ask and GET /info. The tenant is the key's owner. */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../app.js';
import { PorticoError } from '../../errors/portico-error.js';
import { answerUsage, runChat } from '../../pipeline/run.js';
import { validateAskRequest } from '../../pipeline/validate.js';
import { tenantModels } from '../../pipeline/resolve-model.js';
import { tenantRoute } from './openai.js';
import { backendView, chainView } from '../../routing/view.js';

export const TENANT_ENDPOINTS = [
  'POST /ask',
  'GET /info',
  'POST /v1/chat/completions',
  'POST /v1/completions',
  'POST /v1/embeddings',
  'POST /v1/rerank',
  'GET /v1/models',
  'GET /health',
];

export function registerTenantRoutes(app: FastifyInstance, gw: Gateway): void {
  app.post(
    '/ask',
    tenantRoute(gw, 'ask', '/ask', async (ctx, tenant, request, reply) => {
      const ask = validateAskRequest(request.body);
      const model = ask.model ?? tenant.defaultModel;
      if (!model)
        throw new PorticoError(
          'model_not_found',
          'Your tenant has no model to answer with. Ask your operator to allow one.',
          { param: 'model' },
        );
      const out = await runChat(gw.deps, ctx, tenant, {
        model,
        messages: [{ role: 'user', content: ask.question }],
        ...(ask.max_tokens !== undefined ? { max_tokens: ask.max_tokens } : {}),
      });
      if (out.kind !== 'json') throw new PorticoError('internal_error', 'unexpected stream for /ask');
      const choice = out.body.choices[0];
      reply.header('x-portico-backend', ctx.backend ?? '');
      return {
        answer: choice?.message.content ?? '',
        finish_reason: choice?.finish_reason ?? null,
        tenant: tenant.id,
        company: tenant.company,
        model,
        backend: ctx.backend ?? null,
        usage: answerUsage(ctx),
        request_id: ctx.requestId,
        correlation_id: ctx.correlationId,
        latency_ms: Math.round((performance.now() - ctx.startedAt) * 100) / 100,
      };
    }),
  );
  app.get(
    '/info',
    tenantRoute(gw, 'info', '/info', async (ctx, tenant) => {
      const { pools, config } = ctx.snapshot;
      const models = tenantModels(ctx, tenant).map((alias) => {
        const { fallbacks, serving } = chainView(pools, alias, config.models[alias]?.fallbacks ?? []);
        return {
          alias,
          backends: (pools.get(alias)?.backends ?? []).map((b) => ({
            id: b.id,
            provider: b.config.provider,
            model: b.upstreamModel,
            healthy: b.healthy,
            state: backendView(b).state,
          })),
          // The chain tried when these backends fail, and who answers now (null: nobody can).
          fallbacks,
          serving,
        };
      });
      return {
        tenant: tenant.id,
        name: tenant.displayName,
        company: tenant.company,
        industry: tenant.industry,
        system_prompt: tenant.systemPrompt,
        prompt_policy: tenant.promptPolicy,
        default_model: tenant.defaultModel ?? null,
        models,
        endpoints: TENANT_ENDPOINTS,
        config_version: ctx.snapshot.version,
      };
    }),
  );
}
