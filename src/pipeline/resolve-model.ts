/** Stage: resolve the model alias against what the tenant may use. Unknown and forbidden look the same (no leak). */
import { PorticoError } from '../errors/portico-error.js';
import type { Pool } from '../routing/pool.js';
import type { RequestContext } from './context.js';
import type { TenantRuntime } from './snapshot.js';

export function tenantModels(ctx: RequestContext, tenant: TenantRuntime): string[] {
  const all = [...ctx.snapshot.pools.keys()];
  return tenant.allowedModels ? all.filter((m) => tenant.allowedModels?.has(m)) : all;
}

export function resolveModel(ctx: RequestContext, tenant: TenantRuntime, alias: string): Pool {
  const pool = ctx.snapshot.pools.get(alias);
  if (!pool || (tenant.allowedModels && !tenant.allowedModels.has(alias))) {
    const mine = tenantModels(ctx, tenant);
    throw new PorticoError(
      'model_not_found',
      `The model "${alias.slice(0, 100)}" does not exist or you do not have access to it. Your models: ${mine.join(', ') || 'none'}.`,
      { param: 'model' },
    );
  }
  ctx.model = alias;
  return pool;
}

/** Enforce the tenant's max_tokens cap and apply its default. Mutates and returns the request. */
export function applyTokenPolicy<
  T extends { max_tokens?: number | null; max_completion_tokens?: number | null },
>(tenant: TenantRuntime, req: T): T {
  const asked = req.max_completion_tokens ?? req.max_tokens ?? undefined;
  if (
    asked !== undefined &&
    asked !== null &&
    tenant.maxTokensCap !== undefined &&
    asked > tenant.maxTokensCap
  ) {
    throw new PorticoError(
      'max_tokens_exceeded',
      `max_tokens ${asked} is above your limit of ${tenant.maxTokensCap}. Ask for ${tenant.maxTokensCap} or fewer.`,
      {
        param: req.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens',
      },
    );
  }
  if ((asked === undefined || asked === null) && tenant.defaultMaxTokens !== undefined)
    req.max_tokens = tenant.defaultMaxTokens;
  return req;
}
