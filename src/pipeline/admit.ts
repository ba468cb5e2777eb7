/**
 * Stage: admit. Per client IP, per key and per tenant (each optional): requests/s token buckets,
 * a tokens/min window, daily/monthly quotas reserved before the call and settled after, and an
 * in-flight cap with a priority queue. All counters live in the state store (atomic there), so N
 * replicas enforce one limit.
 */
import { PorticoError } from '../errors/portico-error.js';
import { ENGINE_DEFAULT_MAX_TOKENS } from '../engine/provider.js';
import type { AdmissionConfig, PorticoConfig, Quota, RateLimits } from '../config/schema.js';
import type {
  InflightLease,
  LimitResult,
  QuotaLimits,
  QuotaScope,
  ReserveResult,
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
  if (key?.limits?.requests_per_second === undefined && tenant.limits?.requests_per_second === undefined)
    return;
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
 * The longest answer a model gives: its `max_output_tokens`, else the smallest its backends
 * declare (the engine's default answer length, Anthropic's `default_max_tokens`), where one
 * declares none `admission.default_output_tokens`.
 */
export function modelMaxOutput(config: PorticoConfig, alias: string): number {
  const model = config.models[alias];
  if (model?.max_output_tokens !== undefined) return model.max_output_tokens;
  const fallback = config.admission.default_output_tokens;
  let max: number | undefined;
  for (const b of model?.backends ?? []) {
    const own =
      b.provider === 'engine'
        ? ENGINE_DEFAULT_MAX_TOKENS
        : b.provider === 'anthropic'
          ? b.default_max_tokens
          : fallback;
    max = max === undefined ? own : Math.min(max, own);
  }
  return max ?? fallback;
}

/** What a request asks of the token budgets. */
export interface TokenNeed {
  /** Prompt tokens as the gateway counts them. */
  prompt: number;
  /** The longest answer: the client's max_tokens, else the model's max output; 0 when there is no answer. */
  output: number;
  /** The shortest answer worth serving: min(admission.min_output_tokens, output). */
  minOutput: number;
}

/** The token need of a request: `output` is its max_tokens, else the model's max output. */
export function tokenNeed(prompt: number, output: number, cfg: AdmissionConfig): TokenNeed {
  return { prompt, output, minOutput: Math.min(cfg.min_output_tokens, output) };
}

/**
 * Send the cap a token budget set upstream, in the field(s) the client used (max_completion_tokens
 * and/or max_tokens, else max_tokens; each provider maps it to its own field). `cap` undefined:
 * nothing bound the answer.
 */
export function capOutput(
  req: { max_tokens?: number | null; max_completion_tokens?: number | null },
  cap: number | undefined,
): void {
  if (cap === undefined) return;
  if (req.max_completion_tokens != null) req.max_completion_tokens = Math.min(req.max_completion_tokens, cap);
  if (req.max_tokens != null) req.max_tokens = Math.min(req.max_tokens, cap);
  if (req.max_completion_tokens == null && req.max_tokens == null) req.max_tokens = cap;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** "Tenant t has used 0 of its daily quota of 3,000 tokens, and 2,950 more are held by ...". */
function quotaRefusal(
  who: string,
  r: Extract<ReserveResult, { ok: false }>,
  need: TokenNeed | undefined,
): string {
  const per = r.window === 'day' ? 'daily' : 'monthly';
  const reset = `The quota resets at ${new Date(r.resetAt).toISOString()}.`;
  if (r.metric === 'requests') {
    const inFlight = r.held > 0 ? `, and ${fmt(r.held)} more are in flight` : '';
    return `${who} has made ${fmt(r.used)} of its ${per} quota of ${fmt(r.limit)} requests${inFlight}. ${reset}`;
  }
  const held = r.held > 0 ? `, and ${fmt(r.held)} more are held by requests in flight` : '';
  const parts = need
    ? ` (${fmt(need.prompt)} for its prompt + ${fmt(r.needed - need.prompt)} for the shortest answer)`
    : '';
  return `${who} has used ${fmt(r.used)} of its ${per} quota of ${fmt(r.limit)} tokens${held}; this request needs at least ${fmt(r.needed)}${parts}. ${reset}`;
}

/**
 * Tokens/min, quotas and the in-flight cap (with the queue). With a token need, each budget holds
 * as much as fits, up to prompt + output and at least prompt + minOutput (one atomic step per
 * store), and the answer's cap is what the tightest one held minus the prompt: returned, for the
 * caller to send upstream. Without token limits the result is undefined (nothing to cap). On
 * refusal everything taken so far is given back.
 */
export async function admitWork(
  deps: AdmitDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  key: KeyEntry | undefined,
  need: TokenNeed | undefined,
  cfg: AdmissionConfig,
  askedPriority: string | undefined,
): Promise<number | undefined> {
  const tenancy = deps.tenancy;
  if (!tenancy) return undefined;
  let most = need ? need.prompt + need.output : 0;
  const least = need ? need.prompt + need.minOutput : 0;
  const holds = {
    leases: [] as InflightLease[],
    charges: [] as WindowCharge[],
    estimate: most,
  } as NonNullable<RequestContext['admission']>;
  ctx.admission = holds;
  const counters = tenancy.state.counters;

  // Tokens per minute.
  const windows: Array<{ scope: ScopeKey; limit: number; who: string }> = [];
  if (need && key?.limits?.tokens_per_minute)
    windows.push({
      scope: { tenant: tenant.id, name: `key:${key.keyId}:tpm` },
      limit: key.limits.tokens_per_minute,
      who: 'this key',
    });
  if (need && tenant.limits?.tokens_per_minute)
    windows.push({
      scope: { tenant: tenant.id, name: 'tenant:tpm' },
      limit: tenant.limits.tokens_per_minute,
      who: `tenant ${tenant.id}`,
    });
  /** Charges that bind the answer (a prompt larger than the whole window does not: see below). */
  const binding: WindowCharge[] = [];
  for (const w of windows) {
    // A request that cannot fit even in an empty window is charged the whole window, all or
    // nothing, as before: it passes only when the window is empty, and its answer is not bound here.
    const fits = least <= w.limit;
    const r = await guard(
      counters.consumeWindow(w.scope, {
        limit: w.limit,
        windowMs: 60_000,
        ...(fits ? { cost: most, minCost: least } : { cost: w.limit }),
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
    if (fits) {
      binding.push(r.charge);
      most = Math.min(most, r.charge.cost);
    }
  }

  // Quotas: reserve across tenant and key scopes atomically, as much as fits.
  const scopes: QuotaScope[] = [];
  const tq = need ? quotaLimits(tenant.quota) : undefined;
  if (tq) scopes.push({ name: 'tenant', limits: tq });
  const kq = need ? quotaLimits(key?.quota) : undefined;
  if (kq && key) scopes.push({ name: `key:${key.keyId}`, limits: kq });
  if (scopes.length > 0) {
    const r = await guard(
      tenancy.state.quotas.reserve({
        tenant: tenant.id,
        scopes,
        tokens: most,
        minTokens: least,
        owner: tenancy.reservations.owner,
        ttlMs: tenancy.reservations.leaseMs,
      }),
    );
    if (!r.ok) {
      deps.metrics.quotaRejections.labels(tenant.id, r.window).inc();
      await releaseHolds(deps, ctx);
      const who = r.scope === 'tenant' ? `Tenant ${tenant.id}` : 'This key';
      throw new PorticoError('insufficient_quota', quotaRefusal(who, r, need), {
        headers: { ...(ctx.responseHeaders ?? {}), 'x-should-retry': 'false' },
      });
    }
    holds.reservation = r.reservation;
    tenancy.reservations.add(r.reservation);
    if (!r.reservation.degraded) most = Math.min(most, r.reservation.tokens);
  }
  // Window charges above what the tightest budget held give the difference back at once.
  for (const c of binding) {
    if (c.cost <= most) continue;
    const over = c.cost;
    c.cost = most;
    void counters
      .settleWindow({ ...c, cost: over }, most)
      .catch((err: unknown) =>
        deps.logger.warn({ err, requestId: ctx.requestId }, 'returning an unused tokens/min charge failed'),
      );
  }
  holds.estimate = most;
  const cap =
    need && need.output > 0 && (windows.length > 0 || scopes.length > 0) ? most - need.prompt : undefined;

  // In-flight caps, waiting in the priority queue when full.
  const caps: Array<{ key: ScopeKey; max: number }> = [];
  if (key?.limits?.max_in_flight)
    caps.push({
      key: { tenant: tenant.id, name: `key:${key.keyId}:inflight` },
      max: key.limits.max_in_flight,
    });
  if (tenant.limits?.max_in_flight)
    caps.push({ key: { tenant: tenant.id, name: 'tenant:inflight' }, max: tenant.limits.max_in_flight });
  if (caps.length === 0) return cap;
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
  return cap;
}

/**
 * Give back in-flight slots at once (they gate other requests); settle tokens and quota with the
 * real usage. Resolves true unless the quota commit (or release) failed.
 */
export function releaseHolds(deps: AdmitDeps, ctx: RequestContext, actualTokens?: number): Promise<boolean> {
  const holds = ctx.admission;
  const tenancy = deps.tenancy;
  if (!holds || !tenancy) return Promise.resolve(true);
  ctx.admission = undefined;
  if (holds.renew) clearInterval(holds.renew);
  const counters = tenancy.state.counters;
  const jobs: Array<Promise<unknown>> = [];
  if (holds.leases.length > 0) {
    jobs.push(Promise.all(holds.leases.map((l) => counters.release(l))).then(() => tenancy.queue.notify()));
  }
  for (const c of holds.charges) jobs.push(counters.settleWindow(c, actualTokens ?? 0));
  if (holds.reservation) {
    tenancy.reservations.delete(holds.reservation);
    jobs.push(
      actualTokens === undefined
        ? tenancy.state.quotas.release(holds.reservation)
        : tenancy.state.quotas.commit(holds.reservation, { tokens: actualTokens, requests: 1 }),
    );
  }
  // Waiting for the stores must not keep the request's context alive (the quota commit waits for
  // the embedded store's next write): only what the outcome needs is passed on.
  return settled(jobs, holds.reservation !== undefined, deps.logger, ctx.requestId);
}

async function settled(
  jobs: Array<Promise<unknown>>,
  quota: boolean,
  logger: Logger,
  requestId: string,
): Promise<boolean> {
  const results = await Promise.allSettled(jobs);
  for (const r of results)
    if (r.status === 'rejected') logger.warn({ err: r.reason, requestId }, 'settling admission failed');
  return !quota || results.at(-1)?.status === 'fulfilled';
}
