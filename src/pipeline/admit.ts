/**
 * Stage: admit. Per client IP, per key and per tenant (each optional): requests/s token buckets,
 * a tokens/min window, daily/monthly quotas reserved before the call and settled after, and an
 * in-flight cap with a priority queue. All counters live in the state store (atomic there), so N
 * replicas enforce one limit.
 */
import { PorticoError } from '../errors/portico-error.js';
import { tokenCount } from '../providers/usage.js';
import { ENGINE_DEFAULT_MAX_TOKENS } from '../engine/provider.js';
import type { AdmissionConfig, PorticoConfig, Quota, RateLimits } from '../config/schema.js';
import type {
  AllLimitResult,
  BucketCheck,
  CounterStore,
  InflightLease,
  LimitResult,
  QuotaLimits,
  QuotaScope,
  ReserveResult,
  ScopeKey,
  WindowCharge,
  WindowResult,
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

/** In-flight leases: renewed every half lease while their request runs (renewSlots). */
const LEASE_MS = 120_000;
/** The cap a lapsed slot is taken again under: none, its request is already running (renewSlots). */
const NO_CAP = Number.MAX_SAFE_INTEGER;

/**
 * A number as a header value: a non-negative integer in plain notation, whatever the limiters'
 * arithmetic gave (a stored limit past its bounds, a store's clock: 1e+308, Infinity, NaN, a
 * negative), capped at 2^53 - 1, which String() still writes digit by digit.
 */
export function headerInt(n: number): string {
  if (!(n > 0)) return '0';
  return n < Number.MAX_SAFE_INTEGER ? String(Math.floor(n)) : String(Number.MAX_SAFE_INTEGER);
}

/** Whole seconds in `ms` (rounded up), at least 1: retry-after. */
function secs(ms: number): string {
  return headerInt(Math.max(1, Math.ceil(ms / 1000)));
}

/** OpenAI-style reset durations: "1s", "6m0s". */
function duration(ms: number): string {
  const s = Number(headerInt(Math.ceil(ms / 1000)));
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

/** The request's response headers, written into in place (no object per limit). */
function headersOf(ctx: RequestContext): Record<string, string> {
  return (ctx.responseHeaders ??= {});
}

/** The requests/s headers. `limit`: String(r.limit), made once per limit (RateCheck). */
function setRequestHeaders(ctx: RequestContext, r: LimitResult, limit: string): void {
  const h = headersOf(ctx);
  const remaining = headerInt(r.remaining);
  h['x-ratelimit-limit'] = limit;
  h['x-ratelimit-remaining'] = remaining;
  h['x-ratelimit-reset'] = headerInt(Math.ceil(r.resetMs / 1000));
  h['x-ratelimit-limit-requests'] = limit;
  h['x-ratelimit-remaining-requests'] = remaining;
  h['x-ratelimit-reset-requests'] = duration(r.resetMs);
}

/** The tokens/min headers of the window checked last (the tenant's when both are). */
function setTokenHeaders(ctx: RequestContext, w: WindowCheck, r: WindowResult): void {
  const h = headersOf(ctx);
  h['x-ratelimit-limit-tokens'] = w.limitHeader;
  h['x-ratelimit-remaining-tokens'] = headerInt(w.limit - Math.ceil(r.used));
  h['x-ratelimit-reset-tokens'] = duration(r.resetMs);
}

function rateLimited(ctx: RequestContext, what: string, retryAfterMs: number): PorticoError {
  const headers = {
    ...(ctx.responseHeaders ?? {}),
    'retry-after': secs(retryAfterMs),
    'retry-after-ms': headerInt(Math.max(1, Math.ceil(retryAfterMs))),
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
    throw storeError(err);
  }
}

/** A store's failure as the client sees it: an unavailable store is a 503 with a retry hint. */
function storeError(err: unknown): unknown {
  return err instanceof StateUnavailableError ? storeDown(err) : err;
}

/**
 * What a tenant's or a key's limits ask of the stores, worked out once per tenant or key entry
 * (both are immutable: a config reload or a key change makes new ones) instead of per request:
 * the scope keys, bucket and window parameters, quota scopes and the header values that do not
 * change. The hot path then allocates only what depends on the request.
 */
interface RateCheck {
  readonly scope: ScopeKey;
  readonly b: { readonly ratePerSec: number; readonly burst: number };
  /** The same bucket as consumeAll takes it. */
  readonly spec: BucketCheck;
  readonly who: string;
  readonly limit: string;
}
interface WindowCheck {
  readonly scope: ScopeKey;
  readonly limit: number;
  readonly who: string;
  readonly limitHeader: string;
}
interface CapCheck {
  readonly key: ScopeKey;
  readonly max: number;
}
interface OwnPlan {
  readonly rate: RateCheck | undefined;
  readonly window: WindowCheck | undefined;
  readonly quota: QuotaScope | undefined;
  /** [quota] (the scopes a reservation takes when only this plan has a quota), else []. */
  readonly quotaScopes: readonly QuotaScope[];
  readonly cap: CapCheck | undefined;
}
const NO_SCOPES: readonly QuotaScope[] = [];
const tenantPlans = new WeakMap<TenantRuntime, OwnPlan>();
const keyPlans = new WeakMap<KeyEntry, OwnPlan>();

function ownPlan(
  tenantId: string,
  prefix: string,
  limits: RateLimits | undefined,
  quota: Quota | undefined,
  who: string,
  quotaScope: string,
): OwnPlan {
  const b = bucket(limits);
  const tpm = limits?.tokens_per_minute;
  const q = quotaLimits(quota);
  const inflight = limits?.max_in_flight;
  const scope = q && { name: quotaScope, limits: q };
  const rps = { tenant: tenantId, name: `${prefix}rps` };
  return {
    rate: b && { scope: rps, b, spec: { key: rps, ...b }, who, limit: headerInt(b.burst) },
    window: tpm
      ? { scope: { tenant: tenantId, name: `${prefix}tpm` }, limit: tpm, who, limitHeader: headerInt(tpm) }
      : undefined,
    quota: scope,
    quotaScopes: scope ? [scope] : NO_SCOPES,
    cap: inflight ? { key: { tenant: tenantId, name: `${prefix}inflight` }, max: inflight } : undefined,
  };
}

function tenantPlan(t: TenantRuntime): OwnPlan {
  let p = tenantPlans.get(t);
  if (p === undefined) {
    p = ownPlan(t.id, 'tenant:', t.limits, t.quota, `tenant ${t.id}`, 'tenant');
    tenantPlans.set(t, p);
  }
  return p;
}

function keyPlan(t: TenantRuntime, k: KeyEntry): OwnPlan {
  let p = keyPlans.get(k);
  if (p === undefined) {
    p = ownPlan(t.id, `key:${k.keyId}:`, k.limits, k.quota, 'this key', `key:${k.keyId}`);
    keyPlans.set(k, p);
  }
  return p;
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

/**
 * Requests/s for the key and its tenant; sets the rate-limit headers (of the tighter one). With
 * both, the two buckets are one all-or-none step (consumeAll): a request the tenant's bucket
 * refuses takes nothing from the key's, and the other way round. With one, a plain consume.
 */
export async function admitRequestRate(
  deps: AdmitDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  key: KeyEntry | undefined,
): Promise<void> {
  if (!deps.tenancy) return;
  const kc = key?.limits?.requests_per_second === undefined ? undefined : keyPlan(tenant, key).rate;
  const tc = tenant.limits?.requests_per_second === undefined ? undefined : tenantPlan(tenant).rate;
  if (kc && tc) return consumeBoth(deps, ctx, tenant, deps.tenancy.state.counters, kc, tc);
  const c = kc ?? tc;
  if (!c) return;
  let r: LimitResult;
  try {
    r = await deps.tenancy.state.counters.consume(c.scope, c.b);
  } catch (err) {
    throw storeError(err);
  }
  setRequestHeaders(ctx, r, c.limit);
  if (!r.allowed) throw refusedRate(deps, ctx, tenant, c, r);
}

/** [the key's bucket, the tenant's], made once per pair of plans (both immutable). */
const ratePairs = new WeakMap<RateCheck, { tenant: RateCheck; specs: readonly BucketCheck[] }>();

/**
 * The key's and the tenant's buckets, all or none. Allowed: the headers are the tighter bucket's
 * (the key's on a tie). Refused: the headers, the retry hint and the message are those of the
 * refusing bucket that has room last (the key's on a tie): only then can the request pass.
 */
async function consumeBoth(
  deps: AdmitDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  counters: CounterStore,
  kc: RateCheck,
  tc: RateCheck,
): Promise<void> {
  let pair = ratePairs.get(kc);
  if (pair?.tenant !== tc) {
    pair = { tenant: tc, specs: [kc.spec, tc.spec] };
    ratePairs.set(kc, pair);
  }
  let all: AllLimitResult;
  try {
    all = await counters.consumeAll(pair.specs);
  } catch (err) {
    throw storeError(err);
  }
  const [kr, tr] = all.results;
  if (!kr || !tr) throw new Error(`consumeAll answered ${all.results.length} results for 2 buckets`);
  if (all.allowed) {
    if (kr.remaining <= tr.remaining) setRequestHeaders(ctx, kr, kc.limit);
    else setRequestHeaders(ctx, tr, tc.limit);
    return;
  }
  const tenantLast = !tr.allowed && (kr.allowed || tr.retryAfterMs > kr.retryAfterMs);
  const [c, r] = tenantLast ? [tc, tr] : [kc, kr];
  setRequestHeaders(ctx, r, c.limit);
  throw refusedRate(deps, ctx, tenant, c, r);
}

/** A requests/s refusal: counted, and the 429 (the headers are set by the caller). */
function refusedRate(
  deps: AdmitDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  c: RateCheck,
  r: LimitResult,
): PorticoError {
  deps.metrics.rateLimitRejections.labels(tenant.id, 'rps').inc();
  return rateLimited(ctx, `${c.b.ratePerSec} requests/s for ${c.who}`, r.retryAfterMs);
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

  const tp = tenantPlan(tenant);
  const kp = key ? keyPlan(tenant, key) : undefined;

  // Tokens per minute: the key's window, then the tenant's. A charge "binds" the answer unless the
  // request could not fit even in an empty window (see chargeWindow).
  let keyBinding: WindowCharge | undefined;
  let tenantBinding: WindowCharge | undefined;
  if (need && kp?.window) {
    const c = await chargeWindow(deps, ctx, tenant, counters, kp.window, most, least);
    holds.charges.push(c);
    if (least <= kp.window.limit) {
      keyBinding = c;
      most = Math.min(most, c.cost);
    } else most = Math.min(most, least); // too big for any window: the shortest useful answer only
  }
  if (need && tp.window) {
    const c = await chargeWindow(deps, ctx, tenant, counters, tp.window, most, least);
    holds.charges.push(c);
    if (least <= tp.window.limit) {
      tenantBinding = c;
      most = Math.min(most, c.cost);
    } else most = Math.min(most, least);
  }
  const windows = need ? (kp?.window ? 1 : 0) + (tp.window ? 1 : 0) : 0;

  // Quotas: reserve across tenant and key scopes atomically, as much as fits.
  const tq = need ? tp.quota : undefined;
  const kq = need ? kp?.quota : undefined;
  const scopes: readonly QuotaScope[] = tq && kq ? [tq, kq] : tq ? tp.quotaScopes : kq ? [kq] : NO_SCOPES;
  if (scopes.length > 0) {
    let r: ReserveResult;
    try {
      r = await tenancy.state.quotas.reserve({
        tenant: tenant.id,
        scopes,
        tokens: most,
        minTokens: least,
        owner: tenancy.reservations.owner,
        ttlMs: tenancy.reservations.leaseMs,
      });
    } catch (err) {
      // As for a refusal: the window charges go back now, not when the request finishes.
      await releaseHolds(deps, ctx);
      throw storeError(err);
    }
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
  // The tokens headers are the window charged last's: the tenant's when it has one.
  if (keyBinding && keyBinding.cost > most) giveBack(deps, ctx, counters, keyBinding, most, !tp.window);
  if (tenantBinding && tenantBinding.cost > most) giveBack(deps, ctx, counters, tenantBinding, most, true);
  holds.estimate = most;
  const cap = need && need.output > 0 && (windows > 0 || scopes.length > 0) ? most - need.prompt : undefined;

  // In-flight caps, waiting in the priority queue when full.
  if (!kp?.cap && !tp.cap) return cap;
  const caps: CapCheck[] = [];
  if (kp?.cap) caps.push(kp.cap);
  if (tp.cap) caps.push(tp.cap);
  await takeSlots(deps, tenancy, ctx, tenant, caps, holds, cfg, askedPriority);
  return cap;
}

/**
 * Charge a tokens/min window (sets the tokens headers); a refusal gives back at once everything
 * held so far (the key's charge when the tenant's window refuses: a refused request costs nothing
 * in the other window, as with the requests/s buckets) and is the 429; a store error gives it back
 * too and is the 503. A request that cannot fit even in an empty window (`least` above the limit)
 * is charged the whole window, all or nothing: it passes only when the window is empty, and its
 * answer is not bound here.
 */
async function chargeWindow(
  deps: AdmitDeps,
  ctx: RequestContext,
  tenant: TenantRuntime,
  counters: CounterStore,
  w: WindowCheck,
  most: number,
  least: number,
): Promise<WindowCharge> {
  let r: WindowResult;
  try {
    r = await counters.consumeWindow(
      w.scope,
      least <= w.limit
        ? { limit: w.limit, windowMs: 60_000, cost: most, minCost: least }
        : { limit: w.limit, windowMs: 60_000, cost: w.limit },
    );
  } catch (err) {
    // As for a refusal: the key's charge goes back now, not when the request finishes.
    await releaseHolds(deps, ctx);
    throw storeError(err);
  }
  setTokenHeaders(ctx, w, r);
  if (!r.allowed || !r.charge) {
    deps.metrics.rateLimitRejections.labels(tenant.id, 'tpm').inc();
    await releaseHolds(deps, ctx);
    throw rateLimited(ctx, `${w.limit} tokens/min for ${w.who}`, r.retryAfterMs);
  }
  return r.charge;
}

/**
 * A window charge above what the tightest budget held: the difference goes back at once. `headed`:
 * the tokens headers are this window's, so what goes back is added to x-ratelimit-remaining-tokens.
 */
function giveBack(
  deps: AdmitDeps,
  ctx: RequestContext,
  counters: CounterStore,
  c: WindowCharge,
  most: number,
  headed: boolean,
): void {
  const over = c.cost;
  c.cost = most;
  // A degraded charge (fail_open, store down) was never written: there is nothing to give back,
  // and its settle adds the whole actual cost.
  if (c.degraded === true) return;
  if (headed) {
    const h = headersOf(ctx);
    h['x-ratelimit-remaining-tokens'] = headerInt(
      Number(h['x-ratelimit-remaining-tokens'] ?? 0) + over - most,
    );
  }
  void counters
    .settleWindow({ ...c, cost: over }, most)
    .catch((err: unknown) =>
      deps.logger.warn({ err, requestId: ctx.requestId }, 'returning an unused tokens/min charge failed'),
    );
}

/**
 * In-flight caps, waiting in the priority queue when full. Apart from admitWork so that its
 * variables (captured by `tryAll`) are allocated only for requests that have such a cap.
 */
const NO_KEYS: readonly string[] = [];

async function takeSlots(
  deps: AdmitDeps,
  tenancy: Tenancy,
  ctx: RequestContext,
  tenant: TenantRuntime,
  caps: readonly CapCheck[],
  holds: NonNullable<RequestContext['admission']>,
  cfg: AdmissionConfig,
  askedPriority: string | undefined,
): Promise<void> {
  const counters = tenancy.state.counters;
  let gaveUp = false;
  const tryAll = async (): Promise<boolean> => {
    const got: InflightLease[] = [];
    for (const c of caps) {
      let lease: InflightLease | null | undefined;
      try {
        lease = (await counters.acquire(c.key, { max: c.max, leaseMs: LEASE_MS })).lease;
      } catch (err) {
        // The key's slot is taken and the tenant's acquire failed (store down): give the key's back.
        await Promise.allSettled(got.map((l) => counters.release(l)));
        throw storeError(err);
      }
      if (!lease) {
        await Promise.all(got.map((l) => counters.release(l)));
        return false;
      }
      got.push(lease);
    }
    if (gaveUp) {
      await Promise.all(got.map((l) => counters.release(l)));
      return false;
    }
    holds.leases.push(...got);
    return true;
  };
  const priority = effectivePriority(tenant.priority, askedPriority);
  const queue = tenancy.queue;
  // Behind whoever of the same or a higher class already waits for one of these caps.
  const keys = queue.depth === 0 ? NO_KEYS : caps.map((c) => `${c.key.tenant}\u0000${c.key.name}`);
  const behind = keys.length > 0 && queue.waitingAhead(priority, keys);
  if (behind || !(await tryAll())) {
    const started = performance.now();
    deps.metrics.queueDepth.labels(tenant.id).inc();
    let ok: boolean;
    const full = queue.full;
    try {
      const waiting = queue.wait(
        priority,
        cfg.queue_timeout_ms,
        tryAll,
        ctx.controller.signal,
        keys.length > 0 ? keys : caps.map((c) => `${c.key.tenant}\u0000${c.key.name}`),
      );
      // Queued behind others without trying: let the queue try, in its order, at once.
      if (behind) queue.notify();
      ok = await waiting;
    } catch (err) {
      // A try in the queue failed on the store: tryAll gave back the slots it took and mapped the
      // error (503 limits_unavailable), as for a store error before the queue.
      gaveUp = true;
      throw err;
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
        full
          ? `Tenant ${tenant.id} is at its limit of concurrent requests and the admission queue is full (admission.max_queue: ${queue.maxQueue} waiting per replica). Retry shortly.`
          : `Tenant ${tenant.id} is at its limit of concurrent requests and this request waited ${cfg.queue_timeout_ms} ms for a slot. Retry shortly.`,
        {
          headers: { ...(ctx.responseHeaders ?? {}), 'retry-after': '1' },
        },
      );
    }
  }
  // Long streams keep their slots; a lapsed one is taken again (renewSlots).
  const who: LapseLog = { tenant: tenant.id, requestId: ctx.requestId, logged: false };
  holds.renew = setInterval(() => void renewSlots(deps, counters, holds, who), LEASE_MS / 2);
  holds.renew.unref();
}

/** Whose slots a renewal looks after: ids, not the request's context (see releaseHolds). */
interface LapseLog {
  readonly tenant: string;
  readonly requestId: string;
  logged: boolean;
}

/**
 * Renew a running request's in-flight leases. A renewal that finds its lease lapsed (the store was
 * unreachable, or this process stalled, for longer than a lease, so the store stopped counting the
 * slot) takes the slot again at once, even over the cap: the request runs whatever the count says;
 * uncounted, its slot would let one more request in for as long as it runs, while counted over the
 * cap it only holds new requests back until enough finish. Counted in
 * portico_admission_lease_lapses_total{lease="inflight"}, logged once per request. A store error
 * leaves the lease as it is: the next renewal tries again.
 */
async function renewSlots(
  deps: AdmitDeps,
  counters: CounterStore,
  holds: NonNullable<RequestContext['admission']>,
  who: LapseLog,
): Promise<void> {
  for (let i = 0; i < holds.leases.length; i++) {
    const lease = holds.leases[i] as InflightLease;
    let again: InflightLease | null;
    try {
      if (await counters.renew(lease, LEASE_MS)) continue;
      again = (await counters.acquire(lease.key, { max: NO_CAP, leaseMs: LEASE_MS })).lease;
    } catch {
      continue;
    }
    if (!again) continue;
    if (holds.released) {
      // The request finished while the slot was being taken again.
      void counters.release(again).catch(() => undefined);
      return;
    }
    holds.leases[i] = again;
    deps.metrics.leaseLapses.labels(who.tenant, 'inflight').inc();
    if (who.logged) continue;
    who.logged = true;
    deps.logger.warn(
      { tenant: who.tenant, requestId: who.requestId, slot: lease.key.name },
      'an in-flight slot lapsed while its request ran (the limit store was unreachable, or this process stalled, for longer than the lease); it was taken again, over max_in_flight if need be',
    );
  }
}

/**
 * Give back in-flight slots at once (they gate other requests); settle tokens and quota with the
 * real usage. Resolves false only when the quota commit was given up (quota-commits.ts).
 */
let nonFiniteLogged = false;

function warnNonFinite(logger: Logger, ctx: RequestContext, tokens: number): void {
  if (nonFiniteLogged) return;
  nonFiniteLogged = true;
  logger.warn(
    { requestId: ctx.requestId, route: ctx.route, backend: ctx.backend, tokens: String(tokens) },
    'settling tokens that are not a finite number >= 0; the estimate held was settled instead (logged once)',
  );
}

export function releaseHolds(deps: AdmitDeps, ctx: RequestContext, actualTokens?: number): Promise<boolean> {
  const holds = ctx.admission;
  const tenancy = deps.tenancy;
  if (!holds || !tenancy) return Promise.resolve(true);
  ctx.admission = undefined;
  holds.released = true;
  if (holds.renew) clearInterval(holds.renew);
  const counters = tenancy.state.counters;
  // The backstop: a count that is no number (NaN) must not reach a window or a quota (run.ts
  // finiteUsage is the first line): the estimate held for the request is settled instead.
  if (actualTokens !== undefined && tokenCount(actualTokens) === undefined) {
    warnNonFinite(deps.logger, ctx, actualTokens);
    actualTokens = holds.estimate;
  }
  const jobs: Array<Promise<unknown>> = [];
  if (holds.leases.length > 0) {
    jobs.push(Promise.all(holds.leases.map((l) => counters.release(l))).then(() => tenancy.queue.notify()));
  }
  for (const c of holds.charges) jobs.push(counters.settleWindow(c, actualTokens ?? 0));
  let quota: Promise<boolean> | undefined;
  if (holds.reservation) {
    tenancy.reservations.delete(holds.reservation);
    // A commit that fails is owed and retried until it lands (quota-commits.ts); false only when
    // it was given up, and then the ledger journal keeps it for the next start's replay.
    if (actualTokens === undefined) jobs.push(tenancy.state.quotas.release(holds.reservation));
    else quota = tenancy.quotaCommits.commit(holds.reservation, { tokens: actualTokens, requests: 1 });
  }
  // Waiting for the stores must not keep the request's context alive (the quota commit waits for
  // the embedded store's next write): only what the outcome needs is passed on.
  return settled(jobs, quota, deps.logger, ctx.requestId);
}

async function settled(
  jobs: Array<Promise<unknown>>,
  quota: Promise<boolean> | undefined,
  logger: Logger,
  requestId: string,
): Promise<boolean> {
  const results = await Promise.allSettled(jobs);
  for (const r of results)
    if (r.status === 'rejected') logger.warn({ err: r.reason, requestId }, 'settling admission failed');
  return quota === undefined ? true : quota;
}
