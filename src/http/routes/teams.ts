/**
 * Team routes (the seeds' route table): `POST /api/{team}/predict {prompt, max_tokens}` runs the
 * team's model alias (or A/B split) through the full tenant pipeline with the route's time limit,
 * and answers `{output, model, variant, backend, latency_ms, correlation_id, ...}`. A route with a
 * `path` (e.g. /v1/text2sql) is also served there. Routes follow config reloads; a new dedicated
 * path needs a restart (paths are registered at start).
 */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../app.js';
import type { TeamRoute } from '../../config/schema.js';
import { PorticoError } from '../../errors/portico-error.js';
import type { RequestContext } from '../../pipeline/context.js';
import { limitRequestTime } from '../../pipeline/resolve-model.js';
import { answerUsage, runChat } from '../../pipeline/run.js';
import type { TenantRuntime } from '../../pipeline/snapshot.js';
import { tenantRoute } from './openai.js';

interface PredictBody {
  prompt: string;
  max_tokens?: number;
  temperature?: number;
  user?: string;
}

function validatePredict(body: unknown): PredictBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new PorticoError(
      'invalid_request',
      'Send a JSON object like {"prompt": "...", "max_tokens": 256}.',
    );
  const b = body as Record<string, unknown>;
  if (typeof b.prompt !== 'string' || b.prompt.trim() === '')
    throw new PorticoError('invalid_request', 'prompt must be a non-empty string.', { param: 'prompt' });
  const out: PredictBody = { prompt: b.prompt };
  if (b.max_tokens !== undefined) {
    if (typeof b.max_tokens !== 'number' || !Number.isInteger(b.max_tokens) || b.max_tokens < 1)
      throw new PorticoError('invalid_request', 'max_tokens must be a positive integer.', {
        param: 'max_tokens',
      });
    out.max_tokens = b.max_tokens;
  }
  if (b.temperature !== undefined) {
    if (typeof b.temperature !== 'number' || b.temperature < 0 || b.temperature > 2)
      throw new PorticoError('invalid_request', 'temperature must be a number from 0 to 2.', {
        param: 'temperature',
      });
    out.temperature = b.temperature;
  }
  if (b.user !== undefined) {
    if (typeof b.user !== 'string')
      throw new PorticoError('invalid_request', 'user must be a string.', { param: 'user' });
    out.user = b.user;
  }
  return out;
}

/** The tenant may use a route when it may use the route's model (a split alias is enough). */
export function mayUseRoute(tenant: TenantRuntime, route: TeamRoute): boolean {
  return !tenant.allowedModels || tenant.allowedModels.has(route.model);
}

async function predict(gw: Gateway, ctx: RequestContext, tenant: TenantRuntime, team: string, body: unknown) {
  const routes = ctx.snapshot.config.routes;
  const route = Object.hasOwn(routes, team) ? routes[team] : undefined;
  // Unknown and another tenant's route look the same, and the list names only the caller's
  // routes (as GET /v1/models lists only its models): a key cannot probe the config.
  if (!route || !mayUseRoute(tenant, route)) {
    const mine = Object.entries(routes)
      .filter(([, r]) => mayUseRoute(tenant, r))
      .map(([name]) => name);
    throw new PorticoError(
      'not_found',
      `No team route "${team.slice(0, 64)}" for your key. ${
        mine.length > 0
          ? `Your team routes: ${mine.join(', ')}.`
          : 'Your tenant may use no team route; ask your operator for access to one.'
      }`,
    );
  }
  const p = validatePredict(body);
  limitRequestTime(ctx, route.timeout_ms, `team route ${team}`);
  const out = await runChat(gw.deps, ctx, tenant, {
    model: route.model,
    messages: [{ role: 'user', content: p.prompt }],
    ...(p.max_tokens !== undefined ? { max_tokens: p.max_tokens } : {}),
    ...(p.temperature !== undefined ? { temperature: p.temperature } : {}),
    ...(p.user !== undefined ? { user: p.user } : {}),
  });
  if (out.kind !== 'json') throw new PorticoError('internal_error', 'unexpected stream for a team route');
  const choice = out.body.choices[0];
  return {
    output: choice?.message.content ?? '',
    finish_reason: choice?.finish_reason ?? null,
    team,
    model: route.model,
    variant: ctx.variant ?? null,
    backend: ctx.backend ?? null,
    usage: answerUsage(ctx),
    latency_ms: Math.round((performance.now() - ctx.startedAt) * 100) / 100,
    request_id: ctx.requestId,
    correlation_id: ctx.correlationId,
  };
}

export function registerTeamRoutes(app: FastifyInstance, gw: Gateway): void {
  app.post<{ Params: { team: string } }>(
    '/api/:team/predict',
    tenantRoute(gw, 'predict', '/api/:team/predict', (ctx, tenant, request) =>
      predict(gw, ctx, tenant, (request.params as { team: string }).team, request.body),
    ),
  );
  // The config check refuses a path a built-in route or another route has (config/builtin-routes.ts).
  for (const [team, route] of Object.entries(gw.snapshot.config.routes)) {
    if (!route.path) continue;
    app.post(
      route.path,
      tenantRoute(gw, 'predict', route.path, (ctx, tenant, request) =>
        predict(gw, ctx, tenant, team, request.body),
      ),
    );
  }
}
