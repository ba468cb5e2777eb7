/**
 * Quota arithmetic shared by the memory and SQLite stores (the Redis Lua script mirrors it):
 * how many tokens a reservation may hold, or the first limit that refuses it.
 */
import type {
  QuotaMetric,
  QuotaReservation,
  QuotaScope,
  QuotaWindow,
  ReserveRequest,
  ReserveResult,
} from './ports.js';
import { DEFAULT_RESERVATION_TTL_MS, newTimeId, QUOTA_WINDOWS, windowId, windowResetAt } from './util.js';

export interface Tally {
  usedTokens: number;
  usedRequests: number;
  reservedTokens: number;
  reservedRequests: number;
}

export const EMPTY_TALLY: Readonly<Tally> = {
  usedTokens: 0,
  usedRequests: 0,
  reservedTokens: 0,
  reservedRequests: 0,
};

/**
 * How long a settled or expired reservation is remembered, so a repeated commit is not counted
 * twice and a late commit of an expired one is recognised. Bounded to keep Redis memory small
 * (~100 bytes per request for this long).
 */
export const SETTLED_RETENTION_MS = 15 * 60_000;

export type Refusal = Extract<ReserveResult, { ok: false }>;

/** What a reserve may hold: `tokens` granted, or the first limit that refuses it. */
export type Plan = { ok: true; tokens: number } | Refusal;

/** Where an in-process store keeps its numbers: `tally(tenant, scope, windowId)`. */
export interface TallySource {
  tally(tenant: string, scope: string, windowId: string): Tally;
}

function refusal(
  scope: string,
  window: QuotaWindow,
  metric: QuotaMetric,
  limit: number,
  used: number,
  held: number,
  needed: number,
  now: number,
): Refusal {
  return { ok: false, scope, window, metric, limit, used, held, needed, resetAt: windowResetAt(window, now) };
}

/**
 * Reserve "up to `tokens`, at least `minTokens`" (and `requests`) across every scope and window:
 * the grant is the room left in the tightest token limit, capped at `tokens`; a limit whose room
 * is below `minTokens` refuses (scope order, then day before month, tokens before requests). A
 * request that asks for nothing is still refused by an exhausted limit. `source` reads the current
 * numbers of `tenant` in the window ids `windows`. The Redis script QUOTA_RESERVE is a line-for-line
 * port. (No closure per call: this runs for every request of a tenant with a quota.)
 */
export function planReservation(
  scopes: readonly QuotaScope[],
  tokens: number,
  minTokens: number,
  requests: number,
  now: number,
  source: TallySource,
  tenant: string,
  windows: { readonly day: string; readonly month: string },
): Plan {
  let grant = tokens;
  for (const s of scopes) {
    for (const w of QUOTA_WINDOWS) {
      const lim = s.limits[w];
      if (!lim) continue;
      const t = source.tally(tenant, s.name, windows[w]);
      if (lim.tokens !== undefined) {
        const room = lim.tokens - t.usedTokens - t.reservedTokens;
        if (room < minTokens || (minTokens === 0 && room <= 0))
          return refusal(s.name, w, 'tokens', lim.tokens, t.usedTokens, t.reservedTokens, minTokens, now);
        grant = Math.min(grant, room);
      }
      if (lim.requests !== undefined) {
        const taken = t.usedRequests + t.reservedRequests;
        if (taken + requests > lim.requests || (requests === 0 && taken >= lim.requests))
          return refusal(
            s.name,
            w,
            'requests',
            lim.requests,
            t.usedRequests,
            t.reservedRequests,
            requests,
            now,
          );
      }
    }
  }
  return { ok: true, tokens: Math.max(0, grant) };
}

/** Whole, non-negative token counts, with min <= max (every backend stores whole tokens). */
export function tokenRange(tokens: number, minTokens: number | undefined): { max: number; min: number } {
  const max = Math.max(0, Math.ceil(tokens));
  const min = minTokens === undefined ? max : Math.min(max, Math.max(0, Math.ceil(minTokens)));
  return { max, min };
}

/**
 * The reservation an in-process store (memory, SQLite) takes for `req` at `now`, or the first limit
 * that refuses it; `source` reads that store's numbers. The store then records it its own way.
 */
export function takeReservation(
  req: ReserveRequest,
  now: number,
  source: TallySource,
): { ok: true; reservation: QuotaReservation } | Refusal {
  const requests = req.requests ?? 1;
  const range = tokenRange(req.tokens, req.minTokens);
  const windows = { day: windowId('day', now), month: windowId('month', now) };
  const plan = planReservation(req.scopes, range.max, range.min, requests, now, source, req.tenant, windows);
  if (!plan.ok) return plan;
  return {
    ok: true,
    reservation: {
      id: newTimeId(now),
      tenant: req.tenant,
      scopes: req.scopes.map((sc) => sc.name),
      windows,
      tokens: plan.tokens,
      requests,
      owner: req.owner ?? '',
      expiresAt: now + (req.ttlMs ?? DEFAULT_RESERVATION_TTL_MS),
    },
  };
}
