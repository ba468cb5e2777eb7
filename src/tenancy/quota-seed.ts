/**
 * Quota usage from the usage ledger. The quota store counts a scope (a tenant, or one of its keys)
 * only while that scope has a quota: the hot path does nothing for a tenant without one. So when a
 * scope gains a quota — PATCHed at noon, added to the config file, a tenant re-created with one —
 * its counters would start the current day and month from zero, and the tenant would get a whole
 * quota on top of what it had already used (review, 2026-12). Seeding raises the counters to what
 * the ledger holds for the current UTC day and month (QuotaStore.raiseUsage: never lowered, so
 * seeding twice, or a scope that was counting already, changes nothing). The same figures are what
 * the admin API shows for a tenant without a quota.
 *
 * What the ledger counts as a quota would: the rows a quota counts (answered below 400, or with
 * tokens), their tokens in and out, cache hits' tokens only when
 * `admission.count_cache_hits_against_quota` (their requests always). Best effort: records still
 * in another replica's ledger buffer (flushed every 250 ms) are not seen yet.
 */
import type { LedgerFilter, LedgerRow, LedgerStore, QuotaStore, QuotaWindow } from '../state/index.js';
import { windowId, windowResetAt } from '../state/index.js';

/** A quota scope: a tenant's own, or one of its keys'. */
export interface SeedScope {
  tenant: string;
  keyId?: string | undefined;
}

export type WindowUsage = Record<QuotaWindow, { tokens: number; requests: number }>;

export function scopeName(s: SeedScope): string {
  return s.keyId === undefined ? 'tenant' : `key:${s.keyId}`;
}

function scopeKey(tenant: string, keyId: string | undefined): string {
  return keyId === undefined ? `t\u0000${tenant}` : `k\u0000${tenant}\u0000${keyId}`;
}

const empty = (): WindowUsage => ({ day: { tokens: 0, requests: 0 }, month: { tokens: 0, requests: 0 } });

/** The first ms of the UTC day and month `now` is in. */
function windowStarts(now: number): { day: number; month: number } {
  return {
    day: windowResetAt('day', now) - 86_400_000,
    month: Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1),
  };
}

/** Scopes of up to this many tenants are read tenant by tenant (see ledgerQuotaUsage). */
const PER_TENANT_QUERIES_UP_TO = 16;

/**
 * What a quota would have counted in the current UTC day and month for each of these scopes,
 * from the ledger (2 queries for tenant scopes, 2 more for key scopes; twice that when cache hits'
 * tokens do not count). One scope: filtered by its tenant (and key); several: one pass for all.
 */
export async function ledgerQuotaUsage(
  ledger: LedgerStore,
  scopes: readonly SeedScope[],
  countCacheHitTokens: boolean,
  now: number,
): Promise<Map<string, WindowUsage>> {
  const out = new Map<string, WindowUsage>();
  if (scopes.length === 0) return out;
  // A few tenants: a query of each one's rows (its index range), not a pass over the whole month's
  // ledger, which on a busy gateway is millions of rows; many tenants: one pass for all.
  const tenants = new Set(scopes.map((s) => s.tenant));
  if (tenants.size > 1 && tenants.size <= PER_TENANT_QUERIES_UP_TO) {
    for (const t of tenants) {
      const part = await ledgerQuotaUsage(
        ledger,
        scopes.filter((s) => s.tenant === t),
        countCacheHitTokens,
        now,
      );
      for (const [k, u] of part) out.set(k, u);
    }
    return out;
  }
  const starts = windowStarts(now);
  const today = windowId('day', now);
  const only = scopes.length === 1 ? scopes[0] : undefined;
  const oneTenant = tenants.size === 1 ? scopes[0]?.tenant : undefined;
  const base: LedgerFilter = {
    from: starts.month,
    quota_counted: true,
    ...(oneTenant !== undefined ? { tenant: oneTenant } : {}),
  };
  const wanted = new Set(scopes.map((s) => scopeKey(s.tenant, s.keyId)));
  const add = (k: string, w: QuotaWindow, r: LedgerRow, sign: 1 | -1, requests: boolean): void => {
    if (!wanted.has(k)) return;
    let u = out.get(k);
    if (!u) out.set(k, (u = empty()));
    u[w].tokens += sign * (r.tokens_in + r.tokens_out);
    if (requests) u[w].requests += r.requests;
  };
  /** All rows, then (sign -1, tokens only) the cache hits when their tokens do not count. */
  const passes: Array<{ filter: LedgerFilter; sign: 1 | -1 }> = [{ filter: {}, sign: 1 }];
  if (!countCacheHitTokens) passes.push({ filter: { cache_hit: true }, sign: -1 });

  if (scopes.some((s) => s.keyId === undefined)) {
    for (const p of passes)
      for (const r of await ledger.query({ ...base, ...p.filter }, 'day')) {
        const k = scopeKey(r.tenant, undefined);
        add(k, 'month', r, p.sign, p.sign === 1);
        if (r.group === today) add(k, 'day', r, p.sign, p.sign === 1);
      }
  }
  if (scopes.some((s) => s.keyId !== undefined)) {
    const key = only?.keyId !== undefined ? { key_id: only.keyId } : {};
    for (const p of passes)
      for (const [w, from] of [
        ['month', starts.month],
        ['day', starts.day],
      ] as const)
        for (const r of await ledger.query({ ...base, ...key, ...p.filter, from }, 'key'))
          if (r.group !== '') add(scopeKey(r.tenant, r.group), w, r, p.sign, p.sign === 1);
  }
  for (const u of out.values())
    for (const w of ['day', 'month'] as const) u[w].tokens = Math.max(0, u[w].tokens);
  return out;
}

/** The usage of one scope, from ledgerQuotaUsage's answer (zero when it has none). */
export function usageFor(m: ReadonlyMap<string, WindowUsage>, s: SeedScope): WindowUsage {
  return m.get(scopeKey(s.tenant, s.keyId)) ?? empty();
}

/**
 * Raise these scopes' quota counters to their ledger usage (see above). Returns the scopes that
 * were raised, and by how much.
 */
export async function seedFromLedger(
  deps: { ledger: LedgerStore; quotas: QuotaStore; flushLedger: () => Promise<void> },
  scopes: readonly SeedScope[],
  countCacheHitTokens: boolean,
  now = Date.now(),
): Promise<Array<{ scope: SeedScope; added: WindowUsage }>> {
  if (scopes.length === 0) return [];
  // This replica's buffered records first (the others' are flushed every 250 ms).
  await deps.flushLedger();
  const usage = await ledgerQuotaUsage(deps.ledger, scopes, countCacheHitTokens, now);
  const raised: Array<{ scope: SeedScope; added: WindowUsage }> = [];
  for (const scope of scopes) {
    const u = usage.get(scopeKey(scope.tenant, scope.keyId));
    if (!u) continue;
    const moved = await deps.quotas.raiseUsage(scope.tenant, scopeName(scope), u, now);
    if (moved.length === 0) continue;
    const added = empty();
    for (const m of moved) added[m.window] = { tokens: m.tokens, requests: m.requests };
    raised.push({ scope, added });
  }
  return raised;
}
