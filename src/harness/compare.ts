/**
 * `bench compare A B`: B is the candidate, A the baseline (e.g. quantized vs FP16, lora-v2 vs v1).
 * Latency: Mann-Whitney U over the per-request latencies of answered requests (no normality
 * assumption, robust to the long tail). Pass rate: two-proportion z-test. Both two-sided at α=0.05.
 */
import { z } from 'zod';
import { mannWhitneyU, twoProportionZ, type MannWhitneyResult, type ProportionTestResult } from './stats.js';
import type { BenchReport } from './report.js';
import { ERROR_CLASSES, type ErrorClass } from './types.js';

export const ALPHA = 0.05;

const dist = z
  .object({
    count: z.number(),
    p50: z.number().nullable(),
    p95: z.number().nullable(),
    p99: z.number().nullable(),
    mean: z.number().nullable(),
  })
  .passthrough();
/** Only the parts compare needs; a report from a newer harness with extra keys still loads. */
const reportSchema = z
  .object({
    schema_version: z.literal(1),
    run_id: z.string(),
    summary: z
      .object({
        total: z.number(),
        passed: z.number(),
        pass_rate: z.number(),
        latency_ms: dist,
        ttft_ms: dist,
        errors_by_class: z.record(z.string(), z.number()),
        throughput: z
          .object({ requests_per_s: z.number(), completion_tokens_per_s: z.number() })
          .passthrough(),
      })
      .passthrough(),
    samples: z.array(
      z
        .object({
          latency_ms: z.number(),
          ttft_ms: z.number().nullable(),
          passed: z.boolean(),
          error_class: z.string().nullable(),
        })
        .passthrough(),
    ),
  })
  .passthrough();

export function parseReport(text: string, name: string): BenchReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${name}: not valid JSON`);
  }
  const res = reportSchema.safeParse(raw);
  if (!res.success)
    throw new Error(
      `${name}: not a bench report (${res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
    );
  return raw as BenchReport;
}

interface Delta {
  a: number | null;
  b: number | null;
  delta: number | null;
  delta_pct: number | null;
}

export interface Comparison {
  a: string;
  b: string;
  latency_ms: {
    p50: Delta;
    p95: Delta;
    p99: Delta;
    mean: Delta;
    test: MannWhitneyResult | null;
    significant: boolean;
    note: string;
  };
  ttft_ms: { p50: Delta; test: MannWhitneyResult | null; significant: boolean; note: string };
  pass_rate: {
    a: number;
    b: number;
    delta_pp: number;
    test: ProportionTestResult | null;
    significant: boolean;
    note: string;
  };
  throughput_rps: Delta;
  errors_by_class: Record<ErrorClass, { a: number; b: number }>;
  verdict: string;
}

const r2 = (x: number): number => Math.round(x * 100) / 100;
/** p-values are rounded to 4 places; say "p<0.0001" rather than "p=0". */
const fp = (p: number): string => (p < 0.0001 ? 'p<0.0001' : `p=${p}`);

function delta(a: number | null, b: number | null): Delta {
  if (a === null || b === null) return { a, b, delta: null, delta_pct: null };
  return { a, b, delta: r2(b - a), delta_pct: a === 0 ? null : r2(((b - a) / a) * 100) };
}

function latencyNote(
  what: string,
  t: MannWhitneyResult | null,
  d: Delta,
): { significant: boolean; note: string } {
  if (t === null) return { significant: false, note: `${what}: not enough samples to test` };
  const significant = t.p < ALPHA;
  const dir = (d.delta ?? 0) > 0 ? 'slower' : 'faster';
  return {
    significant,
    note: significant
      ? `${what}: B is ${dir} (p50 ${d.delta_pct ?? '?'}%); Mann-Whitney U ${fp(t.p)} < ${ALPHA}, significant (n=${t.n1}/${t.n2}, rank-biserial ${t.effect})`
      : `${what}: no significant difference (Mann-Whitney U ${fp(t.p)} ≥ ${ALPHA}, n=${t.n1}/${t.n2})`,
  };
}

function answeredLatencies(r: BenchReport): number[] {
  return r.samples
    .filter((s) => s.error_class === null || s.error_class === 'check_failed')
    .map((s) => s.latency_ms);
}

export function compareReports(a: BenchReport, b: BenchReport): Comparison {
  const la = answeredLatencies(a);
  const lb = answeredLatencies(b);
  const lt = mannWhitneyU(la, lb);
  const p50 = delta(a.summary.latency_ms.p50, b.summary.latency_ms.p50);
  const latNote = latencyNote('latency', lt, p50);
  const ta = a.samples.map((s) => s.ttft_ms).filter((t): t is number => t !== null);
  const tb = b.samples.map((s) => s.ttft_ms).filter((t): t is number => t !== null);
  const tt = ta.length && tb.length ? mannWhitneyU(ta, tb) : null;
  const ttftP50 = delta(a.summary.ttft_ms.p50, b.summary.ttft_ms.p50);
  const ttftNote =
    ta.length && tb.length
      ? latencyNote('time to first token', tt, ttftP50)
      : { significant: false, note: 'time to first token: not measured in both runs (use --stream)' };
  const pt = twoProportionZ(a.summary.passed, a.summary.total, b.summary.passed, b.summary.total);
  const deltaPp = r2((b.summary.pass_rate - a.summary.pass_rate) * 100);
  const passSig = pt !== null && pt.p < ALPHA;
  const passNote =
    pt === null
      ? 'pass rate: a run has no requests'
      : passSig
        ? `pass rate: B is ${deltaPp > 0 ? 'better' : 'worse'} by ${Math.abs(deltaPp)} points; two-proportion z-test ${fp(pt.p)} < ${ALPHA}, significant`
        : `pass rate: difference of ${deltaPp} points is not significant (two-proportion z-test ${fp(pt.p)} ≥ ${ALPHA}, n=${a.summary.total}/${b.summary.total})`;
  const errors = Object.fromEntries(
    ERROR_CLASSES.map((c) => [
      c,
      { a: a.summary.errors_by_class[c] ?? 0, b: b.summary.errors_by_class[c] ?? 0 },
    ]),
  ) as Record<ErrorClass, { a: number; b: number }>;
  const verdictParts: string[] = [];
  if (passSig) verdictParts.push(deltaPp < 0 ? 'B loses quality' : 'B gains quality');
  if (latNote.significant) verdictParts.push((p50.delta ?? 0) > 0 ? 'B is slower' : 'B is faster');
  const verdict = verdictParts.length ? verdictParts.join('; ') : 'no significant difference at α=0.05';
  return {
    a: a.run_id,
    b: b.run_id,
    latency_ms: {
      p50,
      p95: delta(a.summary.latency_ms.p95, b.summary.latency_ms.p95),
      p99: delta(a.summary.latency_ms.p99, b.summary.latency_ms.p99),
      mean: delta(a.summary.latency_ms.mean, b.summary.latency_ms.mean),
      test: lt,
      ...latNote,
    },
    ttft_ms: { p50: ttftP50, test: tt, ...ttftNote },
    pass_rate: {
      a: a.summary.pass_rate,
      b: b.summary.pass_rate,
      delta_pp: deltaPp,
      test: pt,
      significant: passSig,
      note: passNote,
    },
    throughput_rps: delta(a.summary.throughput.requests_per_s, b.summary.throughput.requests_per_s),
    errors_by_class: errors,
    verdict,
  };
}

const f = (x: number | null): string => (x === null ? '–' : String(x));
const fd = (d: Delta): string =>
  d.delta === null
    ? '–'
    : `${d.delta > 0 ? '+' : ''}${d.delta}${d.delta_pct === null ? '' : ` (${d.delta_pct > 0 ? '+' : ''}${d.delta_pct}%)`}`;

export function renderComparison(c: Comparison): string {
  const rows: Array<[string, Delta]> = [
    ['latency p50 ms', c.latency_ms.p50],
    ['latency p95 ms', c.latency_ms.p95],
    ['latency p99 ms', c.latency_ms.p99],
    ['latency mean ms', c.latency_ms.mean],
    ['TTFT p50 ms', c.ttft_ms.p50],
    ['throughput req/s', c.throughput_rps],
  ];
  const lines = [
    `# Compare A=\`${c.a}\` vs B=\`${c.b}\``,
    '',
    '| metric | A | B | B − A |',
    '| --- | --- | --- | --- |',
    ...rows.map(([name, d]) => `| ${name} | ${f(d.a)} | ${f(d.b)} | ${fd(d)} |`),
    `| pass rate | ${(c.pass_rate.a * 100).toFixed(1)}% | ${(c.pass_rate.b * 100).toFixed(1)}% | ${c.pass_rate.delta_pp > 0 ? '+' : ''}${c.pass_rate.delta_pp} pp |`,
    ...Object.entries(c.errors_by_class).map(
      ([k, v]) => `| errors ${k} | ${v.a} | ${v.b} | ${v.b - v.a > 0 ? '+' : ''}${v.b - v.a} |`,
    ),
    '',
    '## Significance',
    '',
    `- ${c.latency_ms.note}`,
    `- ${c.ttft_ms.note}`,
    `- ${c.pass_rate.note}`,
    '',
    `**Verdict:** ${c.verdict}.`,
  ];
  return lines.join('\n') + '\n';
}
