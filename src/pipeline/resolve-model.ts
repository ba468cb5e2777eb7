/** Stage: resolve the model alias against what the tenant may use. Unknown and forbidden look the same (no leak). */
import { hash } from 'node:crypto';
import { PorticoError } from '../errors/portico-error.js';
import type { Pool } from '../routing/pool.js';
import type { RequestContext } from './context.js';
import type { TenantRuntime } from './snapshot.js';

export function tenantModels(ctx: RequestContext, tenant: TenantRuntime): string[] {
  const all = Object.keys(ctx.snapshot.config.models);
  return tenant.allowedModels ? all.filter((m) => tenant.allowedModels?.has(m)) : all;
}

function unit(key: string): number {
  return hash('md5', key, 'buffer').readUInt32BE(0) / 0x1_0000_0000;
}

/** A/B: the variant for this caller, sticky (the same key always lands on the same variant). */
export function chooseVariant(
  alias: string,
  variants: ReadonlyArray<{ model: string; weight: number }>,
  key: string,
): string {
  const total = variants.reduce((s, v) => s + v.weight, 0);
  let r = unit(`${alias}\u0000${key}`) * total;
  for (const v of variants) {
    r -= v.weight;
    if (r < 0) return v.model;
  }
  return (variants[variants.length - 1] as { model: string }).model;
}

/**
 * Stop the request with upstream_timeout after `ms` (a model's or team route's total time). A
 * request can meet several limits (a team route's, then its model's): the earliest deadline wins,
 * so a later, longer limit never extends an earlier one, and the 504 names the limit that fired.
 */
export function limitRequestTime(ctx: RequestContext, ms: number, what: string): void {
  const at = performance.now() + ms;
  if (ctx.deadlineAt !== undefined && ctx.deadlineAt <= at) return;
  clearTimeout(ctx.deadlineTimer);
  ctx.deadlineAt = at;
  ctx.deadlineTimer = setTimeout(() => {
    if (ctx.finished || ctx.controller.aborted) return;
    ctx.controller.abort(
      new PorticoError('upstream_timeout', `${what} took longer than its limit of ${ms} ms and was stopped.`),
    );
  }, ms);
  ctx.deadlineTimer.unref();
}

/**
 * Resolve the alias the client asked for to a pool. A split alias picks its variant (sticky per
 * `x-portico-user`, the request's `user`, else the key); the response says which in
 * `x-portico-variant`.
 */
export function resolveModel(
  ctx: RequestContext,
  tenant: TenantRuntime,
  alias: string,
  user?: string | null,
): Pool {
  const model = ctx.snapshot.config.models[alias];
  if (!model || (tenant.allowedModels && !tenant.allowedModels.has(alias))) {
    const mine = tenantModels(ctx, tenant);
    throw new PorticoError(
      'model_not_found',
      `The model "${alias.slice(0, 100)}" does not exist or you do not have access to it. Your models: ${mine.join(', ') || 'none'}.`,
      { param: 'model' },
    );
  }
  let target = alias;
  if (model.split) {
    const key = ctx.stickyUser ?? user ?? ctx.keyId ?? ctx.requestId;
    target = chooseVariant(alias, model.split, key);
    ctx.variant = target;
    ctx.responseHeaders = { ...(ctx.responseHeaders ?? {}), 'x-portico-variant': target };
  }
  const pool = ctx.snapshot.pools.get(target);
  if (!pool)
    throw new PorticoError('model_not_found', `The model "${alias}" has no backends.`, { param: 'model' });
  ctx.model = alias;
  const limit = ctx.snapshot.config.models[target]?.timeout_ms ?? model.timeout_ms;
  if (limit !== undefined) limitRequestTime(ctx, limit, `model ${alias}`);
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
