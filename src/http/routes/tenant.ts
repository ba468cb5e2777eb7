/** The seeds' simple tenant endpoints: POST /ask and GET /info. The tenant is the key's owner. */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../app.js';
import { PorticoError } from '../../errors/portico-error.js';
import { answerUsage, runChat } from '../../pipeline/run.js';
import { validateAskRequest } from '../../pipeline/validate.js';
import { tenantModels } from '../../pipeline/resolve-model.js';
import { tenantRoute } from './openai.js';
import { backendView, modelView } from '../../routing/view.js';
import { BUILTIN_ROUTES } from '../../config/builtin-routes.js';
import { mayUseRoute } from './teams.js';

/** Built-in routes that are not for tenant keys: probes, metrics, docs, the admin API, the console. */
const NOT_TENANT = /^\S+ \/(admin|console|docs|metrics|ready|startup)(\/|$)/;
const TEAM_ROUTE = 'POST /api/:team/predict';

/**
 * The endpoints a tenant key may call, from the list of built-in routes (so a new route is listed
 * here too), `:param` written `{param}`; team routes are listed per route by /info.
 */
export const TENANT_ENDPOINTS: readonly string[] = BUILTIN_ROUTES.filter(
  (r) => !NOT_TENANT.test(r) && r !== TEAM_ROUTE,
).map((r) => r.replace(/:(\w+)/g, '{$1}'));

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
        const { fallbacks, serving, variants } = modelView(pools, config.models, alias);
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
          // A split alias: each variant's weight, chain and who answers it.
          variants,
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
        // The team routes this tenant may use, at /api/{team}/predict and their own paths.
        endpoints: [
          ...TENANT_ENDPOINTS,
          ...Object.entries(config.routes)
            .filter(([, r]) => mayUseRoute(tenant, r))
            .flatMap(([team, r]) => [`POST /api/${team}/predict`, ...(r.path ? [`POST ${r.path}`] : [])]),
        ],
        config_version: ctx.snapshot.version,
      };
    }),
  );
}
