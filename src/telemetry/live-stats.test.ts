import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LiveStats, type FinishedSample } from './live-stats.js';

const sample = (over: Partial<FinishedSample> = {}): FinishedSample => ({
  tenant: 'acme',
  model: 'default',
  status: 200,
  latencyMs: 100,
  tokensIn: 10,
  tokensOut: 5,
  costUsd: 0.001,
  ...over,
});

describe('LiveStats', () => {
  it('aggregates the window by tenant and model, excluding the current second', () => {
    let now = 1_000_000_000_000;
    const s = new LiveStats({ now: () => now });
    for (let i = 0; i < 90; i++) s.record(sample({ latencyMs: 10 + i, backend: i % 3 === 0 ? 'b2' : 'b1' }));
    for (let i = 0; i < 10; i++)
      s.record(sample({ tenant: 'globex', model: 'big', status: 500, latencyMs: 1000 }));
    assert.equal(s.snapshot(60).totals.requests, 0, 'the current second is not complete yet');
    now += 1000;
    const snap = s.snapshot(60, 5);
    assert.equal(snap.totals.requests, 100);
    assert.equal(snap.totals.errors, 10);
    assert.equal(snap.totals.error_rate, 0.1);
    assert.equal(snap.totals.tokens_in, 1000);
    assert.equal(snap.totals.tokens_out, 500);
    assert.equal(snap.totals.cost_usd, 0.1);
    assert.equal(snap.totals.rps, Math.round((100 / 60) * 1000) / 1000);
    assert.deepEqual(
      snap.by_tenant.map((r) => [r.tenant, r.requests, r.errors]),
      [
        ['acme', 90, 0],
        ['globex', 10, 10],
      ],
    );
    assert.deepEqual(
      snap.by_model.map((r) => r.model),
      ['default', 'big'],
    );
    assert.deepEqual(
      snap.by_backend.map((r) => [r.backend, r.requests]),
      [
        ['b1', 60],
        ['b2', 30],
      ],
      'requests that reached no backend are not counted under one',
    );
    assert.equal(snap.series.length, 12);
    assert.equal(snap.series.at(-1)?.rps, 20);
    assert.equal(
      snap.series.slice(0, -1).every((p) => p.rps === 0),
      true,
    );
  });

  it('estimates percentiles within one histogram bucket (25%)', () => {
    let now = 5_000_000;
    const s = new LiveStats({ now: () => now });
    for (let i = 1; i <= 1000; i++) s.record(sample({ latencyMs: i }));
    now += 1000;
    const t = s.snapshot(10).totals;
    assert.ok(t.p50_ms !== null && t.p50_ms >= 500 && t.p50_ms <= 500 * 1.25, `p50 ${t.p50_ms}`);
    assert.ok(t.p95_ms !== null && t.p95_ms >= 950 && t.p95_ms <= 950 * 1.25, `p95 ${t.p95_ms}`);
    assert.equal(t.mean_ms, 500.5);
  });

  it('forgets what slid out of the window and reuses slots', () => {
    let now = 7_000_000;
    const s = new LiveStats({ now: () => now, horizonSeconds: 30 });
    s.record(sample());
    now += 2000;
    assert.equal(s.snapshot(10).totals.requests, 1);
    now += 12_000;
    assert.equal(s.snapshot(10).totals.requests, 0);
    // 30 s later the same slot index is reused: the old second must not leak into the new one.
    now = 7_000_000 + 30_000;
    s.record(sample());
    now += 1000;
    assert.equal(s.snapshot(29).totals.requests, 1);
  });

  it('caps distinct groups per slot', () => {
    let now = 9_000_000;
    const s = new LiveStats({ now: () => now });
    for (let i = 0; i < LiveStats.MAX_GROUPS + 50; i++) s.record(sample({ tenant: `t${i}` }));
    now += 1000;
    const snap = s.snapshot(10);
    assert.equal(snap.by_tenant.length, LiveStats.MAX_GROUPS + 1);
    assert.equal(snap.by_tenant.find((r) => r.tenant === '(other)')?.requests, 50);
    assert.equal(snap.totals.requests, LiveStats.MAX_GROUPS + 50);
  });
});
