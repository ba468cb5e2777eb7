/**
 * Redis quota reservations (distributed family). Reserve checks and holds budget in every
 * (scope, window) of the request in one Lua script, so concurrent reserves from any number of
 * replicas cannot overshoot. Tally hashes live until their window's UTC boundary + 2 days.
 */
import { SETTLED_RETENTION_MS, tokenRange } from '../quota-logic.js';
import type {
  Clock,
  QuotaMetric,
  QuotaMoved,
  QuotaReservation,
  QuotaStore,
  QuotaUsage,
  QuotaWindow,
  ReserveRequest,
  ReserveResult,
} from '../ports.js';
import { DEFAULT_RESERVATION_TTL_MS, newId, QUOTA_WINDOWS, windowId, windowResetAt } from '../util.js';
import { StateUnavailableError } from '../errors.js';
import { asArray, guarded, num, runScript, tenantTag, type LuaScript, type RedisContext } from './client.js';
import {
  QUOTA_COMMIT,
  QUOTA_MOVE,
  QUOTA_RAISE,
  QUOTA_REHOLD,
  QUOTA_RELEASE,
  QUOTA_RENEW,
  QUOTA_RESERVE,
  QUOTA_USAGE,
} from './scripts.js';

const TALLY_GRACE_MS = 2 * 86_400_000;

/** Expiry of a window's tally: its reset plus a grace for late commits. Parsed from the window id. */
function tallyExpireAt(wid: string): number {
  const [y, m, d] = wid.split('-').map(Number);
  const start = d === undefined ? Date.UTC(y ?? 1970, (m ?? 1) - 1, 1) : Date.UTC(y ?? 1970, (m ?? 1) - 1, d);
  return windowResetAt(d === undefined ? 'month' : 'day', start) + TALLY_GRACE_MS;
}

/** A script's (tokens, requests) per window, as the windows that moved. */
function movedOf(v: readonly number[], wids: readonly string[]): QuotaMoved[] {
  const out: QuotaMoved[] = [];
  QUOTA_WINDOWS.forEach((window, i) => {
    const tokens = v[2 * i] ?? 0;
    const requests = v[2 * i + 1] ?? 0;
    if (tokens !== 0 || requests !== 0) out.push({ window, windowId: wids[i] ?? '', tokens, requests });
  });
  return out;
}

export class RedisQuotaStore implements QuotaStore {
  readonly #ctx: RedisContext;
  readonly #clock: Clock;

  constructor(ctx: RedisContext, opts: { clock?: Clock } = {}) {
    this.#ctx = ctx;
    this.#clock = opts.clock ?? Date.now;
  }

  #tag(tenant: string): string {
    return tenantTag(this.#ctx.prefix, tenant);
  }
  #tally(tenant: string, scope: string, wid: string): string {
    return `${this.#tag(tenant)}:q:${encodeURIComponent(scope)}:${wid}`;
  }
  #hold(tenant: string): string {
    return `${this.#tag(tenant)}:qh`;
  }
  #resPrefix(tenant: string): string {
    return `${this.#tag(tenant)}:qr:`;
  }
  #tallies(r: { tenant: string; scopes: string[]; windows: { day: string; month: string } }): string[] {
    return r.scopes.flatMap((s) => QUOTA_WINDOWS.map((w) => this.#tally(r.tenant, s, r.windows[w])));
  }

  async reserve(req: ReserveRequest): Promise<ReserveResult> {
    const now = req.now ?? this.#clock();
    const range = tokenRange(req.tokens, req.minTokens);
    const requests = req.requests ?? 1;
    const windows = { day: windowId('day', now), month: windowId('month', now) };
    const ttl = req.ttlMs ?? DEFAULT_RESERVATION_TTL_MS;
    const r: QuotaReservation = {
      id: newId(),
      tenant: req.tenant,
      scopes: req.scopes.map((s) => s.name),
      windows,
      tokens: range.max,
      requests,
      owner: req.owner ?? '',
      expiresAt: now + ttl,
    };
    const limitArgs = req.scopes.flatMap((s) =>
      QUOTA_WINDOWS.flatMap((w) => [
        s.limits[w]?.tokens ?? '',
        s.limits[w]?.requests ?? '',
        tallyExpireAt(windows[w]),
      ]),
    );
    return guarded(
      this.#ctx,
      'quotas',
      'reserve',
      async (): Promise<ReserveResult> => {
        const out = asArray(
          await runScript(
            this.#ctx.redis,
            QUOTA_RESERVE,
            [this.#hold(r.tenant), this.#resPrefix(r.tenant) + r.id, ...this.#tallies(r)],
            [
              now,
              range.max,
              range.min,
              requests,
              r.expiresAt,
              ttl + SETTLED_RETENTION_MS,
              this.#resPrefix(r.tenant),
              r.id,
              r.owner,
              ...limitArgs,
            ],
          ),
        );
        if (num(out[0]) === 1) return { ok: true, reservation: { ...r, tokens: num(out[1]) } };
        const idx = num(out[1]) - 1;
        const scope = req.scopes[Math.floor(idx / QUOTA_WINDOWS.length)]?.name ?? '';
        const window: QuotaWindow = QUOTA_WINDOWS[idx % QUOTA_WINDOWS.length] ?? 'day';
        const metric: QuotaMetric = num(out[2]) === 1 ? 'tokens' : 'requests';
        return {
          ok: false,
          scope,
          window,
          metric,
          limit: num(out[3]),
          used: num(out[4]),
          held: num(out[5]),
          needed: num(out[6]),
          resetAt: windowResetAt(window, now),
        };
      },
      // Fail-open: the request goes ahead with what it asked for, counted once Redis is back.
      () => ({ ok: true, reservation: { ...r, degraded: true } }),
    );
  }

  /**
   * Throws when Redis does not take it, in either failure mode: the usage was spent, so the caller
   * retries it (tenancy/quota-commits.ts) rather than have fail_open drop it. Counted with mode
   * `retry`; not logged here (the caller logs once per outage, not once per try).
   */
  async commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<void> {
    const tallies = this.#tallies(res);
    const expiries = res.scopes.flatMap(() => QUOTA_WINDOWS.map((w) => tallyExpireAt(res.windows[w])));
    try {
      await runScript(
        this.#ctx.redis,
        QUOTA_COMMIT,
        [this.#hold(res.tenant), this.#resPrefix(res.tenant) + res.id, ...tallies],
        [
          res.id,
          Math.max(0, Math.round(actual.tokens)),
          actual.requests ?? res.requests,
          SETTLED_RETENTION_MS,
          ...expiries,
        ],
      );
    } catch (error) {
      this.#ctx.hooks?.onError?.({ store: 'redis', port: 'quotas', op: 'commit', mode: 'retry', error });
      throw new StateUnavailableError('redis', 'redis unavailable for quotas.commit', error);
    }
  }

  async release(res: QuotaReservation): Promise<void> {
    await guarded(
      this.#ctx,
      'quotas',
      'release',
      async () => {
        await runScript(
          this.#ctx.redis,
          QUOTA_RELEASE,
          [this.#hold(res.tenant), this.#resPrefix(res.tenant) + res.id],
          [res.id, SETTLED_RETENTION_MS],
        );
      },
      () => undefined,
    );
  }

  async renew(
    reservations: readonly QuotaReservation[],
    ttlMs = DEFAULT_RESERVATION_TTL_MS,
  ): Promise<number> {
    return guarded(
      this.#ctx,
      'quotas',
      'renew',
      async () =>
        (await this.#perTenant(QUOTA_RENEW, reservations, ttlMs)).reduce((a: number, v) => a + num(v), 0),
      () => 0,
    );
  }

  /**
   * Run a lease script (renew, rehold) once per tenant over its held reservations: all of a
   * tenant's keys share its hash tag (one cluster slot). Degraded reservations are skipped. Resolves
   * the scripts' answers, one per tenant.
   */
  async #perTenant(
    script: LuaScript,
    reservations: readonly QuotaReservation[],
    ttlMs: number,
  ): Promise<unknown[]> {
    const byTenant = new Map<string, QuotaReservation[]>();
    for (const r of reservations) {
      if (r.degraded) continue;
      const list = byTenant.get(r.tenant);
      if (list) list.push(r);
      else byTenant.set(r.tenant, [r]);
    }
    if (byTenant.size === 0) return [];
    const expiresAt = this.#clock() + ttlMs;
    return Promise.all(
      [...byTenant].map(([tenant, list]) =>
        runScript(
          this.#ctx.redis,
          script,
          [this.#hold(tenant), ...list.map((r) => this.#resPrefix(tenant) + r.id)],
          [expiresAt, ttlMs + SETTLED_RETENTION_MS, ...list.map((r) => r.id)],
        ),
      ),
    );
  }

  /**
   * One script: both tallies of a tenant share its hash tag (one cluster slot). Throws when Redis
   * does not take it, in either failure mode (nothing moved; the caller tries again at its next start).
   */
  async moveUsage(tenant: string, from: string, to: string, now?: number): Promise<QuotaMoved[]> {
    if (from === to) return [];
    const t = now ?? this.#clock();
    const wids = QUOTA_WINDOWS.map((w) => windowId(w, t));
    let v: number[];
    try {
      v = asArray(
        await runScript(
          this.#ctx.redis,
          QUOTA_MOVE,
          wids.flatMap((wid) => [this.#tally(tenant, from, wid), this.#tally(tenant, to, wid)]),
          wids.map(tallyExpireAt),
        ),
      ).map(num);
    } catch (error) {
      this.#ctx.hooks?.onError?.({ store: 'redis', port: 'quotas', op: 'moveUsage', mode: 'retry', error });
      throw new StateUnavailableError('redis', 'redis unavailable for quotas.moveUsage', error);
    }
    return movedOf(v, wids);
  }

  /** One script for both windows (the tenant's hash tag: one cluster slot). Throws when Redis is down. */
  async raiseUsage(
    tenant: string,
    scope: string,
    atLeast: Record<QuotaWindow, { tokens: number; requests: number }>,
    now?: number,
  ): Promise<QuotaMoved[]> {
    const t = now ?? this.#clock();
    const wids = QUOTA_WINDOWS.map((w) => windowId(w, t));
    let v: number[];
    try {
      v = asArray(
        await runScript(
          this.#ctx.redis,
          QUOTA_RAISE,
          wids.map((wid) => this.#tally(tenant, scope, wid)),
          QUOTA_WINDOWS.flatMap((w, i) => [
            Math.max(0, Math.round(atLeast[w].tokens)),
            Math.max(0, Math.round(atLeast[w].requests)),
            tallyExpireAt(wids[i] ?? ''),
          ]),
        ),
      ).map(num);
    } catch (error) {
      this.#ctx.hooks?.onError?.({ store: 'redis', port: 'quotas', op: 'raiseUsage', mode: 'retry', error });
      throw new StateUnavailableError('redis', 'redis unavailable for quotas.raiseUsage', error);
    }
    return movedOf(v, wids);
  }

  async rehold(
    reservations: readonly QuotaReservation[],
    ttlMs = DEFAULT_RESERVATION_TTL_MS,
  ): Promise<string[]> {
    return guarded(
      this.#ctx,
      'quotas',
      'rehold',
      async () =>
        (await this.#perTenant(QUOTA_REHOLD, reservations, ttlMs)).flatMap((v) => asArray(v).map(String)),
      () => [],
    );
  }

  async usage(tenant: string, scope: string, window: QuotaWindow, now?: number): Promise<QuotaUsage> {
    const t = now ?? this.#clock();
    const wid = windowId(window, t);
    const v = await guarded(
      this.#ctx,
      'quotas',
      'usage',
      async () =>
        asArray(
          await runScript(
            this.#ctx.redis,
            QUOTA_USAGE,
            [this.#hold(tenant), this.#tally(tenant, scope, wid)],
            [t, this.#resPrefix(tenant)],
          ),
        ).map(num),
      () => [0, 0, 0, 0],
    );
    return {
      window,
      windowId: wid,
      usedTokens: v[0] ?? 0,
      usedRequests: v[1] ?? 0,
      reservedTokens: v[2] ?? 0,
      reservedRequests: v[3] ?? 0,
      resetAt: windowResetAt(window, t),
    };
  }
}
