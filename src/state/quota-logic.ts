/**
 * Quota arithmetic shared by the memory and SQLite stores (the Redis Lua script mirrors it):
 * which windows a request counts in, and the first limit it would break.
 */
import type { QuotaMetric, QuotaScope, QuotaWindow, ReserveResult } from './ports.js';
import { QUOTA_WINDOWS, windowResetAt } from './util.js';

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

/**
 * The first limit (scope order, then day before month, tokens before requests) that
 * tokens/requests would break, or null. `tally(scope, window)` reads the current numbers.
 */
export function firstRefusal(
  scopes: QuotaScope[],
  tokens: number,
  requests: number,
  now: number,
  tally: (scope: string, window: QuotaWindow) => Tally,
): Refusal | null {
  for (const s of scopes) {
    for (const w of QUOTA_WINDOWS) {
      const lim = s.limits[w];
      if (!lim) continue;
      const t = tally(s.name, w);
      const checks: Array<[QuotaMetric, number | undefined, number, number]> = [
        ['tokens', lim.tokens, t.usedTokens + t.reservedTokens, tokens],
        ['requests', lim.requests, t.usedRequests + t.reservedRequests, requests],
      ];
      for (const [metric, limit, used, add] of checks) {
        if (limit === undefined) continue;
        if (used + add > limit || (add === 0 && used >= limit)) {
          return { ok: false, scope: s.name, window: w, metric, limit, used, resetAt: windowResetAt(w, now) };
        }
      }
    }
  }
  return null;
}
