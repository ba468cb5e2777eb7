import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distribution, mannWhitneyU, normalCdf, percentile, twoProportionZ } from './stats.js';

test('nearest-rank percentiles', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 95), 95);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile([], 50), null);
  assert.deepEqual(distribution([3, 1, 2]), { count: 3, min: 1, mean: 2, p50: 2, p95: 3, p99: 3, max: 3 });
});

test('normal CDF matches known values', () => {
  assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7);
  assert.ok(Math.abs(normalCdf(1.96) - 0.975) < 1e-4);
  assert.ok(Math.abs(normalCdf(-2.5758) - 0.005) < 1e-4);
});

test('Mann-Whitney U: textbook example and separated samples', () => {
  // U of the first sample = rank sum 14 - 4*5/2 = 4 (hand-checked): a = {1,2,3,8}, b = {4,5,6,7,9}.
  const r = mannWhitneyU([1, 2, 3, 8], [4, 5, 6, 7, 9]);
  assert.equal(r?.u, 4);
  const far = mannWhitneyU(
    Array.from({ length: 30 }, (_, i) => 10 + i),
    Array.from({ length: 30 }, (_, i) => 100 + i),
  );
  assert.ok(far !== null && far.p < 0.001 && far.effect === 1);
  const same = mannWhitneyU([1, 2, 3, 4], [1, 2, 3, 4]);
  assert.ok(same !== null && same.p > 0.9);
  assert.equal(mannWhitneyU([], [1]), null);
});

test('two-proportion z-test', () => {
  const r = twoProportionZ(90, 100, 70, 100);
  assert.ok(r !== null && r.z < -3 && r.p < 0.001);
  assert.equal(twoProportionZ(5, 10, 5, 10)?.p, 1);
  assert.equal(twoProportionZ(10, 10, 10, 10)?.p, 1);
});
