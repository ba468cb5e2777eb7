/**
 * The in-process quota store keeps a held reservation's tallies with it (settling builds no keys);
 * these tests cover what could make those stale: a tally forgotten while a reservation counting in
 * it is still held, and the settle paths after expiry (the shared behaviour is in
 * test/conformance/state.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryQuotaStore, type QuotaPersistence } from './quotas.js';
import type { QuotaReservation } from '../ports.js';

/** Persistence in memory: what settle() wrote, summed per (tenant, scope, window id). */
function memoryFile(): QuotaPersistence & { sums: Map<string, { tokens: number; requests: number }> } {
  const sums = new Map<string, { tokens: number; requests: number }>();
  const settled = new Set<string>();
  return {
    sums,
    load: (tenant, scope, wid) => ({
      ...(sums.get(`${tenant}/${scope}/${wid}`) ?? { tokens: 0, requests: 0 }),
    }),
    settledBefore: (id) => (settled.has(id) ? 'written' : false),
    whenWritten: () => Promise.resolve(),
    settle(res: QuotaReservation, tokens: number, requests: number): Promise<void> {
      settled.add(res.id);
      for (const s of res.scopes)
        for (const wid of [res.windows.day, res.windows.month]) {
          const k = `${res.tenant}/${s}/${wid}`;
          const cur = sums.get(k) ?? { tokens: 0, requests: 0 };
          sums.set(k, { tokens: cur.tokens + tokens, requests: cur.requests + requests });
        }
      return Promise.resolve();
    },
    flush: () => undefined,
    move(tenant, from, to, wids) {
      return wids.map((wid) => {
        const moved = sums.get(`${tenant}/${from}/${wid}`) ?? { tokens: 0, requests: 0 };
        sums.delete(`${tenant}/${from}/${wid}`);
        const cur = sums.get(`${tenant}/${to}/${wid}`) ?? { tokens: 0, requests: 0 };
        sums.set(`${tenant}/${to}/${wid}`, {
          tokens: cur.tokens + moved.tokens,
          requests: cur.requests + moved.requests,
        });
        return { ...moved };
      });
    },
    add(tenant, scope, wid, tokens, requests) {
      const cur = sums.get(`${tenant}/${scope}/${wid}`) ?? { tokens: 0, requests: 0 };
      sums.set(`${tenant}/${scope}/${wid}`, {
        tokens: cur.tokens + tokens,
        requests: cur.requests + requests,
      });
    },
  };
}

const DAY = 86_400_000;

describe('MemoryQuotaStore: a held reservation keeps its tallies', () => {
  it('a commit after its day tally was forgotten (and read back) counts in the live tally, not the dropped one', async () => {
    let now = Date.UTC(2031, 4, 10, 12);
    const file = memoryFile();
    const store = new MemoryQuotaStore({ clock: () => now, persistence: file });
    const scopes = [{ name: 'tenant', limits: { day: { tokens: 1_000_000 } } }];
    // Holds nothing (0 tokens, 0 requests): its day tally may be forgotten while it is held.
    const r = await store.reserve({ tenant: 't', scopes, tokens: 0, requests: 0, ttlMs: 10 * DAY });
    assert.ok(r.ok);
    // The next day, over 10,000 tallies of other tenants: the purge forgets past days' idle tallies.
    now += DAY;
    for (let i = 0; i < 5_600; i++) {
      const x = await store.reserve({ tenant: `other-${i}`, scopes, tokens: 1 });
      assert.ok(x.ok);
      await store.commit(x.reservation, { tokens: 1 });
    }
    // Read back from the file after it was forgotten: a new tally now counts for that day.
    assert.equal((await store.usage('t', 'tenant', 'day', now - DAY)).usedTokens, 0);
    await store.commit(r.reservation, { tokens: 7, requests: 1 });
    const day = await store.usage('t', 'tenant', 'day', now - DAY);
    assert.equal(day.usedTokens, 7);
    assert.equal(day.usedRequests, 1);
    assert.equal(day.reservedTokens, 0);
    assert.deepEqual(file.sums.get(`t/tenant/${r.reservation.windows.day}`), { tokens: 7, requests: 1 });
  });

  it('holds and usage move together through reserve, commit, release and expiry', async () => {
    let now = Date.UTC(2031, 4, 10, 12);
    const store = new MemoryQuotaStore({ clock: () => now });
    const scopes = [
      { name: 'tenant', limits: { day: { tokens: 1000 } } },
      { name: 'key:k', limits: { month: { tokens: 5000 } } },
    ];
    const a = await store.reserve({ tenant: 't', scopes, tokens: 300, ttlMs: 1000 });
    const b = await store.reserve({ tenant: 't', scopes, tokens: 200, ttlMs: 1000 });
    const c = await store.reserve({ tenant: 't', scopes, tokens: 100, ttlMs: 60_000 });
    assert.ok(a.ok && b.ok && c.ok);
    const both = async (): Promise<number[]> => {
      const d = await store.usage('t', 'tenant', 'day');
      const m = await store.usage('t', 'key:k', 'month');
      return [d.usedTokens, d.reservedTokens, m.usedTokens, m.reservedTokens];
    };
    assert.deepEqual(await both(), [0, 600, 0, 600]);
    await store.commit(a.reservation, { tokens: 120 });
    assert.deepEqual(await both(), [120, 300, 120, 300]);
    // A repeated commit counts once.
    await store.commit(a.reservation, { tokens: 120 });
    assert.deepEqual(await both(), [120, 300, 120, 300]);
    await store.release(c.reservation);
    assert.deepEqual(await both(), [120, 200, 120, 200]);
    // b's lease ends: its hold goes; a late commit still records its usage, once.
    now += 1001;
    assert.deepEqual(await both(), [120, 0, 120, 0]);
    await store.commit(b.reservation, { tokens: 50 });
    await store.commit(b.reservation, { tokens: 50 });
    assert.deepEqual(await both(), [170, 0, 170, 0]);
  });
});
