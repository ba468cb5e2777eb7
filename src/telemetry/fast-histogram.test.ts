import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from './fast-histogram.js';
import { ITL_BUCKETS } from './metrics.js';

describe('FastHistogram', () => {
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

  it('memoises a label set and refuses the wrong number of label values', () => {
    const h = new FastHistogram({ name: 'y', help: 'h', labelNames: ['a', 'b'], buckets: [1] });
    assert.equal(h.labels('1', '2'), h.labels('1', '2'));
    assert.notEqual(h.labels('1', '2'), h.labels('12', ''));
    assert.throws(() => h.labels('1'), /2 label values expected, got 1/);
  });
});
