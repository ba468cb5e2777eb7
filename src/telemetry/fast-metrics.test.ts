import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from './fast-metrics.js';
import { ITL_BUCKETS } from './metrics.js';

describe('FastHistogram and FastCounter', () => {
  it('renders exactly what a prom-client Histogram renders for the same observations', async () => {
    const a = new Registry();
    const b = new Registry();
    const opts = {
      name: 'x_seconds',
      help: 'h',
      labelNames: ['tenant', 'model'] as const,
      buckets: ITL_BUCKETS,
    };
    const slow = new Histogram({ ...opts, labelNames: [...opts.labelNames], registers: [a] });
    const fast = new FastHistogram({ ...opts, registers: [b] });
    // Values on, between, below and above the bounds, for two label sets.
    const values = [0, 0.0005, 0.001, 0.0011, 0.0025, 0.007, 0.05, 0.3, 1, 2.5, 3, 60];
    for (const [t, m] of [
      ['acme', 'gpt'],
      ['beta', 'llama "3"'],
    ] as const) {
      for (const v of values) {
        slow.labels(t, m).observe(v);
        fast.labels(t, m).observe(v);
      }
    }
    fast.labels('acme', 'gpt').observe(Number.NaN); // ignored, as prom-client would refuse it
    assert.equal(await b.metrics(), await a.metrics());
    b.resetMetrics();
    assert.equal(await b.metrics(), '# HELP x_seconds h\n# TYPE x_seconds histogram\n');
  });

  it('a FastCounter renders exactly what a prom-client Counter renders', async () => {
    const a = new Registry();
    const b = new Registry();
    const opts = { name: 'y_requests', help: 'h', labelNames: ['tenant', 'status'] as const };
    const slow = new Counter({ ...opts, labelNames: [...opts.labelNames], registers: [a] });
    const fast = new FastCounter({ ...opts, registers: [b] });
    for (const [t, st, by] of [
      ['acme', '200', 1],
      ['acme', '200', 2.5],
      ['acme', '429', 1],
      ['b\\"x\n', '200', 0],
    ] as const) {
      slow.labels(t, st).inc(by);
      fast.labels(t, st).inc(by);
    }
    assert.equal(await b.metrics(), await a.metrics());
    assert.throws(() => fast.labels('acme', '200').inc(-1), /cannot be increased by -1/);
    assert.throws(() => fast.labels('acme', '200').inc(Number.NaN), /cannot be increased by NaN/);
    assert.equal((await fast.get()).values.find((v) => v.labels.status === '429')?.value, 1);
  });

  it('memoises a label set and refuses the wrong number of label values', () => {
    const h = new FastHistogram({ name: 'y', help: 'h', labelNames: ['a', 'b'], buckets: [1] });
    assert.equal(h.labels('1', '2'), h.labels('1', '2'));
    assert.notEqual(h.labels('1', '2'), h.labels('12', ''));
    assert.throws(() => h.labels('1'), /2 label values expected, got 1/);
  });
});
