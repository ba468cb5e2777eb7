/**
 * Stage: admit. Per client IP, per key and per tenant (each optional): requests/s token buckets,
 * a tokens/min window, daily/monthly quotas reserved before the call and settled after, and an
 * in-flight cap with a priority queue. All counters live in the state store (atomic there), so N
 * replicas enforce one limit.
 */
import { PorticoError } from '../errors/portico-error.js';
import type { AdmissionConfig, Quota, RateLimits } from '../config/schema.js';
import type {
  InflightLease,
  LimitResult,
  QuotaLimits,
  QuotaScope,
  ScopeKey,
  WindowCharge,
} from '../state/index.js';
import { StateUnavailableError } from '../state/index.js';
import type { Tenancy } from '../tenancy/tenancy.js';
import { effectivePriority } from '../tenancy/priority-queue.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import type { Logger } from '../telemetry/logger.js';
import type { RequestContext } from './context.js';
import type { KeyEntry, TenantRuntime } from './snapshot.js';

export interface AdmitDeps {
  tenancy?: Tenancy;
  metrics: GatewayMetrics;
  logger: Logger;
}

const LEASE_MS = 120_000;

function secs(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/** OpenAI-style reset durations: "1s", "6m0s". */
function duration(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

function setHeaders(ctx: RequestContext, h: Record<string, string>): void {
  ctx.responseHeaders = ctx.responseHeaders ? Object.assign(ctx.responseHeaders, h) : h;
}

function requestHeaders(r: LimitResult): Record<string, string> {
  return {
    'x-ratelimit-limit': String(r.limit),
    'x-ratelimit-remaining': String(r.remaining),
    'x-ratelimit-reset': String(Math.ceil(r.resetMs / 1000)),
    'x-ratelimit-limit-requests': String(r.limit),
    'x-ratelimit-remaining-requests': String(r.remaining),
    'x-ratelimit-reset-requests': duration(r.resetMs),
  };
}

function rateLimited(ctx: RequestContext, what: string, retryAfterMs: number): PorticoError {
  const headers = {
    ...(ctx.responseHeaders ?? {}),
    'retry-after': secs(retryAfterMs),
    'retry-after-ms': String(Math.max(1, Math.ceil(retryAfterMs))),
  };
  return new PorticoError(
    'rate_limit_exceeded',
    `Rate limit reached: ${what}. Retry after ${(retryAfterMs / 1000).toFixed(2)} s.`,
    { headers },
  );
}

function storeDown(err: unknown): PorticoError {
  return new PorticoError(
    'limits_unavailable',
    "Portico's limit store is unavailable, so the request cannot be admitted safely. Retry shortly.",
    { headers: { 'retry-after': '1' }, cause: err },
  );
}

async function guard<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof StateUnavailableError) throw storeDown(err);
    throw err;
  }
}

function bucket(limits: RateLimits | undefined): { ratePerSec: number; burst: number } | undefined {
  const rps = limits?.requests_per_second;
  if (rps === undefined) return undefined;
  return { ratePerSec: rps, burst: limits?.burst ?? Math.max(1, Math.ceil(rps)) };
}

/** Per-IP requests/s, before authentication (protects the key check itself). */
export async function admitIp(deps: AdmitDeps, ctx: RequestContext, cfg: AdmissionConfig): Promise<void> {
  const b = bucket(cfg.per_ip);
  if (!b || !deps.tenancy) return;
  const r = await guard(
    deps.tenancy.state.counters.consume({ tenant: '_ip', name: `ip:${ctx.clientIp}` }, b),
  );
  if (!r.allowed) {
    deps.metrics.rateLimitRejections.labels('_anonymous', 'ip').inc();
    throw rateLimited(ctx, `${b.ratePerSec} requests/s per client IP`, r.retryAfterMs);
  }
}

/** Requests/s for the key and its tenant; sets the rate-limit headers. */
export async function admitRequestRate(
  deps: AdmitDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  key: KeyEntry | undefined,
): Promise<void> {
  if (!deps.tenancy) return;
  const checks: Array<{ scope: ScopeKey; b: { ratePerSec: number; burst: number }; who: string }> = [];
  const kb = bucket(key?.limits);
  if (kb && key)
    checks.push({ scope: { tenant: tenant.id, name: `key:${key.keyId}:rps` }, b: kb, who: 'this key' });
  const tb = bucket(tenant.limits);
  if (tb)
    checks.push({ scope: { tenant: tenant.id, name: 'tenant:rps' }, b: tb, who: `tenant ${tenant.id}` });
  let tightest: LimitResult | undefined;
  for (const c of checks) {
    const r = await guard(deps.tenancy.state.counters.consume(c.scope, c.b));
    if (!tightest || r.remaining < tightest.remaining) tightest = r;
    if (!r.allowed) {
      setHeaders(ctx, requestHeaders(r));
      deps.metrics.rateLimitRejections.labels(tenant.id, 'rps').inc();
      throw rateLimited(ctx, `${c.b.ratePerSec} requests/s for ${c.who}`, r.retryAfterMs);
    }
  }
  if (tightest) setHeaders(ctx, requestHeaders(tightest));
}

function quotaLimits(q: Quota | undefined): QuotaLimits | undefined {
  if (!q) return undefined;
  const day = {
    ...(q.daily_tokens ? { tokens: q.daily_tokens } : {}),
    ...(q.daily_requests ? { requests: q.daily_requests } : {}),
  };
  const month = {
    ...(q.monthly_tokens ? { tokens: q.monthly_tokens } : {}),
    ...(q.monthly_requests ? { requests: q.monthly_requests } : {}),
  };
  if (Object.keys(day).length === 0 && Object.keys(month).length === 0) return undefined;
  return { ...(Object.keys(day).length ? { day } : {}), ...(Object.keys(month).length ? { month } : {}) };
}

/** Does this request need a token estimate (tokens/min or a token quota somewhere)? */
export function needsTokenEstimate(tenant: TenantRuntime, key: KeyEntry | undefined): boolean {
  return Boolean(
    tenant.limits?.tokens_per_minute || key?.limits?.tokens_per_minute || tenant.quota || key?.quota,
  );
}

/**
 * Tokens/min, quotas and the in-flight cap (with the queue). `estimate` = prompt tokens + the
 * most the answer may use. On refusal everything taken so far is given back.
 */
export async function admitWork(
  deps: AdmitDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  key: KeyEntry | undefined,
  estimate: number,
  cfg: AdmissionConfig,
  askedPriority: string | undefined,
): Promise<void> {
  const tenancy = deps.tenancy;
  if (!tenancy) return;
  const holds = { leases: [] as InflightLease[], charges: [] as WindowCharge[], estimate } as NonNullable<
    RequestContext['admission']
  >;
  ctx.admission = holds;
  const counters = tenancy.state.counters;

  // Tokens per minute.
  const windows: Array<{ scope: ScopeKey; limit: number; who: string }> = [];
  if (key?.limits?.tokens_per_minute)
    windows.push({
      scope: { tenant: tenant.id, name: `key:${key.keyId}:tpm` },
      limit: key.limits.tokens_per_minute,
      who: 'this key',
    });
  if (tenant.limits?.tokens_per_minute)
    windows.push({
      scope: { tenant: tenant.id, name: 'tenant:tpm' },
      limit: tenant.limits.tokens_per_minute,
      who: `tenant ${tenant.id}`,
    });
  for (const w of windows) {
    const r = await guard(
      counters.consumeWindow(w.scope, {
        limit: w.limit,
        windowMs: 60_000,
        cost: Math.min(estimate, w.limit),
      }),
    );
    setHeaders(ctx, {
      'x-ratelimit-limit-tokens': String(w.limit),
      'x-ratelimit-remaining-tokens': String(Math.max(0, w.limit - Math.ceil(r.used))),
      'x-ratelimit-reset-tokens': duration(r.resetMs),
    });
    if (!r.allowed || !r.charge) {
      deps.metrics.rateLimitRejections.labels(tenant.id, 'tpm').inc();
      await releaseHolds(deps, ctx);
      throw rateLimited(ctx, `${w.limit} tokens/min for ${w.who}`, r.retryAfterMs);
    }
    holds.charges.push(r.charge);
  }

  // Quotas: reserve the estimate across tenant and key scopes atomically.
  const scopes: QuotaScope[] = [];
  const tq = quotaLimits(tenant.quota);
  if (tq) scopes.push({ name: 'tenant', limits: tq });
  const kq = quotaLimits(key?.quota);
  if (kq && key) scopes.push({ name: `key:${key.keyId}`, limits: kq });
  if (scopes.length > 0) {
    const r = await guard(
      tenancy.state.quotas.reserve({
        tenant: tenant.id,
        scopes,
        tokens: estimate,
        ttlMs: ctx.snapshot.config.server.request_timeout_ms + 60_000,
      }),
    );
    if (!r.ok) {
      deps.metrics.quotaRejections.labels(tenant.id, r.window).inc();
      await releaseHolds(deps, ctx);
      const who = r.scope === 'tenant' ? `Tenant ${tenant.id}` : 'This key';
      const per = r.window === 'day' ? 'daily' : 'monthly';
      throw new PorticoError(
        'insufficient_quota',
        `${who} has used ${r.used} of its ${per} quota of ${r.limit} ${r.metric}; this request needs up to ${r.metric === 'tokens' ? estimate : 1} more. The quota resets at ${new Date(r.resetAt).toISOString()}.`,
        { headers: { ...(ctx.responseHeaders ?? {}), 'x-should-retry': 'false' } },
      );
    }
    holds.reservation = r.reservation;
  }

  // In-flight caps, waiting in the priority queue when full.
  const caps: Array<{ key: ScopeKey; max: number }> = [];
  if (key?.limits?.max_in_flight)
    caps.push({
      key: { tenant: tenant.id, name: `key:${key.keyId}:inflight` },
      max: key.limits.max_in_flight,
    });
  if (tenant.limits?.max_in_flight)
    caps.push({ key: { tenant: tenant.id, name: 'tenant:inflight' }, max: tenant.limits.max_in_flight });
  if (caps.length === 0) return;
  let gaveUp = false;
  const tryAll = async (): Promise<boolean> => {
    const got: InflightLease[] = [];
    for (const c of caps) {
      const r = await guard(counters.acquire(c.key, { max: c.max, leaseMs: LEASE_MS }));
      if (!r.lease) {
        await Promise.all(got.map((l) => counters.release(l)));
        return false;
      }
      got.push(r.lease);
    }
    if (gaveUp) {
      await Promise.all(got.map((l) => counters.release(l)));
      return false;
    }
    holds.leases.push(...got);
    return true;
  };
  if (!(await tryAll())) {
    const priority = effectivePriority(tenant.priority, askedPriority);
    const started = performance.now();
    deps.metrics.queueDepth.labels(tenant.id).inc();
    let ok: boolean;
    try {
      ok = await tenancy.queue.wait(priority, cfg.queue_timeout_ms, tryAll, ctx.controller.signal);
    } finally {
      deps.metrics.queueDepth.labels(tenant.id).dec();
    }
    deps.metrics.queueWait.labels(tenant.id).observe((performance.now() - started) / 1000);
    if (!ok) {
      gaveUp = true;
      deps.metrics.queueRejections.labels(tenant.id).inc();
      await releaseHolds(deps, ctx);
      throw new PorticoError(
        'queue_timeout',
        `Tenant ${tenant.id} is at its limit of concurrent requests and this request waited ${cfg.queue_timeout_ms} ms for a slot. Retry shortly.`,
        {
          headers: { ...(ctx.responseHeaders ?? {}), 'retry-after': '1' },
        },
      );
    }
  }
  // Long streams keep their slots.
  holds.renew = setInterval(() => {
    for (const l of holds.leases) void counters.renew(l, LEASE_MS).catch(() => undefined);
  }, LEASE_MS / 2);
  holds.renew.unref();
}

/** Give back in-flight slots at once (they gate other requests); settle tokens and quota with the real usage. */
export async function releaseHolds(
  deps: AdmitDeps,
  ctx: RequestContext,
  actualTokens?: number,
): Promise<void> {
  const holds = ctx.admission;
  const tenancy = deps.tenancy;
  if (!holds || !tenancy) return;
  ctx.admission = undefined;
  if (holds.renew) clearInterval(holds.renew);
  const counters = tenancy.state.counters;
  const jobs: Array<Promise<unknown>> = [];
  if (holds.leases.length > 0) {
    jobs.push(Promise.all(holds.leases.map((l) => counters.release(l))).then(() => tenancy.queue.notify()));
  }
  for (const c of holds.charges) jobs.push(counters.settleWindow(c, actualTokens ?? 0));
  if (holds.reservation) {
    jobs.push(
      actualTokens === undefined
        ? tenancy.state.quotas.release(holds.reservation)
        : tenancy.state.quotas.commit(holds.reservation, { tokens: actualTokens, requests: 1 }),
    );
  }
  const results = await Promise.allSettled(jobs);
  for (const r of results)
    if (r.status === 'rejected')
      deps.logger.warn({ err: r.reason, requestId: ctx.requestId }, 'settling admission failed');
}
