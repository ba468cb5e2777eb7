/**
 * ledgerQuotaUsage reads a few tenants' usage tenant by tenant (each query filtered by its tenant:
 * an index range, not a pass over the month's whole ledger), many tenants in one pass; both give
 * the same figures.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLedgerStore } from '../state/memory/catalog.js';
import type { LedgerFilter, LedgerGroupBy, LedgerRecord, LedgerRow } from '../state/index.js';
import { ledgerQuotaUsage, usageFor, type SeedScope } from './quota-seed.js';

const NOW = Date.UTC(2026, 11, 8, 12);

function record(i: number, tenant: string, key: string | null, time: number, cacheHit = false): LedgerRecord {
  return {
    id: `r${i}`,
    time,
    tenant,
    key_id: key,
    model: 'm',
    backend: 'b',
    tokens_in: 10 + i,
    tokens_out: 5,
    estimated: false,
    cost_usd: 0,
    latency_ms: 1,
    status: 200,
    cache_hit: cacheHit,
    request_id: `r${i}`,
  };
}

/** A memory ledger that remembers every query's filter. */
class SpyLedger extends MemoryLedgerStore {
  readonly filters: LedgerFilter[] = [];
  override query(filter: LedgerFilter, groupBy: LedgerGroupBy): Promise<LedgerRow[]> {
    this.filters.push(filter);
    return super.query(filter, groupBy);
  }
}

async function ledgerWith(tenants: number): Promise<SpyLedger> {
  const l = new SpyLedger();
  const rows: LedgerRecord[] = [];
  let i = 0;
  for (let t = 0; t < tenants; t++) {
    rows.push(record(i++, `t${t}`, 'k1', NOW - 3_600_000));
    rows.push(record(i++, `t${t}`, null, NOW - 2 * 86_400_000)); // earlier this month
    rows.push(record(i++, `t${t}`, 'k1', NOW - 60_000, true));
    rows.push(record(i++, `t${t}`, 'k2', Date.UTC(2026, 10, 30))); // last month
  }
  await l.append(rows);
  return l;
}

describe('ledgerQuotaUsage', () => {
  it('a few tenants: every query names its tenant', async () => {
    const l = await ledgerWith(3);
    const scopes: SeedScope[] = [{ tenant: 't0' }, { tenant: 't1', keyId: 'k1' }, { tenant: 't2' }];
    await ledgerQuotaUsage(l, scopes, false, NOW);
    assert.ok(l.filters.length > 0);
    for (const f of l.filters) assert.ok(f.tenant !== undefined, JSON.stringify(f));
  });

  it('many tenants: one pass for all; the figures are those of the tenant-by-tenant reads', async () => {
    const l = await ledgerWith(20);
    const scopes: SeedScope[] = Array.from({ length: 20 }, (_, t) =>
      t % 2 === 0 ? { tenant: `t${t}` } : { tenant: `t${t}`, keyId: 'k1' },
    );
    for (const hits of [true, false]) {
      l.filters.length = 0;
      const all = await ledgerQuotaUsage(l, scopes, hits, NOW);
      assert.ok(l.filters.some((f) => f.tenant === undefined));
      for (const s of scopes) {
        const alone = await ledgerQuotaUsage(l, [s], hits, NOW);
        assert.deepEqual(usageFor(all, s), usageFor(alone, s), JSON.stringify(s));
      }
      const t0 = usageFor(all, { tenant: 't0' });
      // Three rows this month (one of them a cache hit), two today; last month's row is not counted.
      assert.equal(t0.month.requests, 3);
      assert.equal(t0.day.requests, 2);
    }
  });
});
