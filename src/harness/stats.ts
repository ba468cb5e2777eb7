/**
 * The statistics the harness reports: nearest-rank percentiles, the Mann-Whitney U test (normal
 * approximation with tie correction) for latency samples, and the two-proportion z-test for pass
 * rates. Small and dependency-free; the formulas are the textbook ones (e.g. Wikipedia's
 * "Mann–Whitney U test" and "Two-proportion Z-test").
 */

/** Nearest-rank percentile of an ascending-sorted array; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export interface Distribution {
  count: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

export function distribution(values: readonly number[]): Distribution {
  const sorted = values.slice().sort((a, b) => a - b);
  const n = sorted.length;
  const r = (x: number | null): number | null => (x === null ? null : round2(x));
  return {
    count: n,
    min: r(n ? (sorted[0] as number) : null),
    mean: r(n ? sorted.reduce((a, b) => a + b, 0) / n : null),
    p50: r(percentile(sorted, 50)),
    p95: r(percentile(sorted, 95)),
    p99: r(percentile(sorted, 99)),
    max: r(n ? (sorted[n - 1] as number) : null),
  };
}

/** erfc with fractional error below 1.2e-7 (Numerical Recipes, Chebyshev fit). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal CDF. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

function twoSidedP(z: number): number {
  return Math.min(1, 2 * (1 - normalCdf(Math.abs(z))));
}

export interface MannWhitneyResult {
  n1: number;
  n2: number;
  /** U of the first sample. */
  u: number;
  z: number;
  p: number;
  /** Rank-biserial correlation in [-1, 1]; > 0 means the second sample tends to be larger. */
  effect: number;
}

/** Two-sided Mann-Whitney U test; null when a sample is empty or all values tie. */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): MannWhitneyResult | null {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return null;
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const n = n1 + n2;
  let rankSumA = 0;
  let tieTerm = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && (all[j + 1] as { v: number }).v === (all[i] as { v: number }).v) j++;
    const avgRank = (i + j + 2) / 2;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if ((all[k] as { g: number }).g === 0) rankSumA += avgRank;
    i = j + 1;
  }
  const u1 = rankSumA - (n1 * (n1 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1 || 1))));
  if (!(sigma > 0)) return null;
  // Continuity correction towards the mean.
  const diff = u1 - mu;
  const z = (diff - Math.sign(diff) * 0.5) / sigma;
  return { n1, n2, u: u1, z: round4(z), p: round4(twoSidedP(z)), effect: round4(1 - (2 * u1) / (n1 * n2)) };
}

export interface ProportionTestResult {
  p1: number;
  p2: number;
  z: number;
  p: number;
}

/** Two-sided two-proportion z-test (pooled); null when undefined (empty or all-same pooled rate). */
export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): ProportionTestResult | null {
  if (n1 === 0 || n2 === 0) return null;
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (!(se > 0)) return { p1, p2, z: 0, p: 1 };
  const z = (p2 - p1) / se;
  return { p1: round4(p1), p2: round4(p2), z: round4(z), p: round4(twoSidedP(z)) };
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
