/**
 * The run report: JSON with a fixed shape (every key always present, null where a value does not
 * apply, so two reports diff cleanly and tools can rely on it) and a Markdown rendering.
 */
import { distribution, type Distribution } from './stats.js';
import { ERROR_CLASSES, type ErrorClass, type Outcome, type Target } from './types.js';
import type { RunResult } from './run.js';

export const REPORT_SCHEMA_VERSION = 1;

export interface CategorySummary {
  total: number;
  passed: number;
  pass_rate: number;
  latency_p50_ms: number | null;
}

export interface JudgeSummary {
  model: string;
  scored: number;
  unparsed: number;
  mean: number | null;
  distribution: Record<'1' | '2' | '3' | '4' | '5', number>;
}

export interface BenchReport {
  schema_version: number;
  run_id: string;
  target: { url: string; mode: 'chat' | 'team'; model: string | null; team: string | null; stream: boolean };
  promptset: { path: string; records: number; sha256: string };
  config: {
    concurrency: number;
    count: number | null;
    duration_s: number | null;
    timeout_ms: number;
    judge_model: string | null;
  };
  started_at: string;
  finished_at: string;
  wall_s: number;
  summary: {
    total: number;
    passed: number;
    failed: number;
    pass_rate: number;
    errors_by_class: Record<ErrorClass, number>;
    top_failure_reasons: Array<{ reason: string; count: number }>;
    latency_ms: Distribution;
    ttft_ms: Distribution;
    /** Per streamed request: completion tokens / (latency - TTFT), the decode speed. */
    decode_tokens_per_s: Distribution;
    throughput: { requests_per_s: number; completion_tokens_per_s: number };
    tokens: { prompt: number; completion: number };
    judge: JudgeSummary | null;
  };
  by_category: Record<string, CategorySummary>;
  samples: Outcome[];
}

export interface ReportMeta {
  runId: string;
  baseUrl: string;
  target: Target;
  stream: boolean;
  promptsetPath: string;
  promptsetSha256: string;
  promptsetRecords: number;
  concurrency: number;
  count: number | null;
  durationS: number | null;
  timeoutMs: number;
  judgeModel: string | null;
}

const r2 = (x: number): number => Math.round(x * 100) / 100;
const r4 = (x: number): number => Math.round(x * 10000) / 10000;

/** Drops credentials and query strings from the target URL before it is written anywhere. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid url)';
  }
}

export function buildReport(run: RunResult, meta: ReportMeta): BenchReport {
  const o = run.outcomes;
  const passed = o.filter((x) => x.passed).length;
  const errors = Object.fromEntries(ERROR_CLASSES.map((c) => [c, 0])) as Record<ErrorClass, number>;
  const reasons = new Map<string, number>();
  for (const x of o) {
    if (x.error_class !== null) errors[x.error_class] += 1;
    if (x.reason !== null) reasons.set(x.reason, (reasons.get(x.reason) ?? 0) + 1);
  }
  // Latency counts every request that got an answer (passed or failed its check), not transport errors.
  const answered = o.filter((x) => x.error_class === null || x.error_class === 'check_failed');
  const completion = o.reduce((a, x) => a + x.completion_tokens, 0);
  const prompt = o.reduce((a, x) => a + x.prompt_tokens, 0);
  const wallS = run.wallMs / 1000;
  const cats = new Map<string, Outcome[]>();
  for (const x of o) cats.set(x.category, [...(cats.get(x.category) ?? []), x]);
  const byCategory: Record<string, CategorySummary> = {};
  for (const name of [...cats.keys()].sort()) {
    const xs = cats.get(name) as Outcome[];
    const p = xs.filter((x) => x.passed).length;
    byCategory[name] = {
      total: xs.length,
      passed: p,
      pass_rate: r4(p / xs.length),
      latency_p50_ms: distribution(
        xs.filter((x) => x.error_class === null || x.error_class === 'check_failed').map((x) => x.latency_ms),
      ).p50,
    };
  }
  let judge: JudgeSummary | null = null;
  if (meta.judgeModel !== null) {
    const scores = answered.filter((x) => x.error_class === null || x.error_class === 'check_failed');
    const got = scores.map((x) => x.judge_score).filter((s): s is number => s !== null);
    const dist = { '1': 0, '2': 0, '3': 0, '4': 0, '5': 0 };
    for (const s of got) dist[String(s) as keyof typeof dist] += 1;
    judge = {
      model: meta.judgeModel,
      scored: got.length,
      unparsed: scores.length - got.length,
      mean: got.length ? r2(got.reduce((a, b) => a + b, 0) / got.length) : null,
      distribution: dist,
    };
  }
  return {
    schema_version: REPORT_SCHEMA_VERSION,
    run_id: meta.runId,
    target: {
      url: redactUrl(meta.baseUrl),
      mode: meta.target.kind,
      model: meta.target.kind === 'chat' ? meta.target.model : null,
      team: meta.target.kind === 'team' ? meta.target.team : null,
      stream: meta.stream,
    },
    promptset: { path: meta.promptsetPath, records: meta.promptsetRecords, sha256: meta.promptsetSha256 },
    config: {
      concurrency: meta.concurrency,
      count: meta.count,
      duration_s: meta.durationS,
      timeout_ms: meta.timeoutMs,
      judge_model: meta.judgeModel,
    },
    started_at: run.startedAt.toISOString(),
    finished_at: run.finishedAt.toISOString(),
    wall_s: r2(wallS),
    summary: {
      total: o.length,
      passed,
      failed: o.length - passed,
      pass_rate: o.length ? r4(passed / o.length) : 0,
      errors_by_class: errors,
      top_failure_reasons: [...reasons.entries()]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, 10)
        .map(([reason, count]) => ({ reason, count })),
      latency_ms: distribution(answered.map((x) => x.latency_ms)),
      ttft_ms: distribution(answered.map((x) => x.ttft_ms).filter((t): t is number => t !== null)),
      decode_tokens_per_s: distribution(
        answered
          .filter((x) => x.ttft_ms !== null && x.latency_ms > x.ttft_ms && x.completion_tokens > 1)
          .map((x) => (x.completion_tokens - 1) / ((x.latency_ms - (x.ttft_ms as number)) / 1000)),
      ),
      throughput: {
        requests_per_s: wallS > 0 ? r2(o.length / wallS) : 0,
        completion_tokens_per_s: wallS > 0 ? r2(completion / wallS) : 0,
      },
      tokens: { prompt, completion },
      judge,
    },
    by_category: byCategory,
    samples: o,
  };
}

const fmt = (x: number | null, unit = ''): string => (x === null ? '–' : `${x}${unit}`);
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

export function renderMarkdown(r: BenchReport): string {
  const s = r.summary;
  const target = r.target.mode === 'chat' ? `model \`${r.target.model}\`` : `team \`${r.target.team}\``;
  const lines = [
    `# Bench run \`${r.run_id}\``,
    '',
    `Target ${r.target.url}, ${target}${r.target.stream ? ', streaming' : ''}; promptset \`${r.promptset.path}\` (${r.promptset.records} records, sha256 \`${r.promptset.sha256.slice(0, 12)}\`).`,
    `Concurrency ${r.config.concurrency}; ${r.started_at} → ${r.finished_at} (${r.wall_s} s).`,
    '',
    '## Summary',
    '',
    '| metric | value |',
    '| --- | --- |',
    `| requests | ${s.total} |`,
    `| passed | ${s.passed} |`,
    `| failed | ${s.failed} |`,
    `| pass rate | ${pct(s.pass_rate)} |`,
    `| latency p50 / p95 / p99 | ${fmt(s.latency_ms.p50)} / ${fmt(s.latency_ms.p95)} / ${fmt(s.latency_ms.p99)} ms |`,
    `| time to first token p50 / p95 | ${fmt(s.ttft_ms.p50)} / ${fmt(s.ttft_ms.p95)} ms |`,
    `| decode speed p50 (streamed) | ${fmt(s.decode_tokens_per_s.p50)} tokens/s |`,
    `| throughput | ${s.throughput.requests_per_s} req/s, ${s.throughput.completion_tokens_per_s} completion tokens/s |`,
    `| tokens (prompt / completion) | ${s.tokens.prompt} / ${s.tokens.completion} |`,
  ];
  if (s.judge !== null) {
    lines.push(
      `| judge \`${s.judge.model}\` mean score | ${fmt(s.judge.mean)} (${s.judge.scored} scored, ${s.judge.unparsed} unparsed) |`,
    );
  }
  // Requests without an answer, apart from answers that arrived but failed their content checks.
  lines.push('', '## Errors (no answer)', '', '| class | count |', '| --- | --- |');
  for (const [k, v] of Object.entries(s.errors_by_class))
    if (k !== 'check_failed') lines.push(`| ${k} | ${v} |`);
  lines.push(
    '',
    '## Content checks',
    '',
    `${s.errors_by_class.check_failed ?? 0} answer(s) arrived but failed their content check (\`check_failed\`); they lower the pass rate and are not errors.`,
  );
  lines.push(
    '',
    '## By category',
    '',
    '| category | requests | passed | pass rate | p50 ms |',
    '| --- | --- | --- | --- | --- |',
  );
  for (const [k, v] of Object.entries(r.by_category))
    lines.push(`| ${k} | ${v.total} | ${v.passed} | ${pct(v.pass_rate)} | ${fmt(v.latency_p50_ms)} |`);
  lines.push('', '## Top failure reasons', '');
  if (s.top_failure_reasons.length === 0) lines.push('None.');
  for (const f of s.top_failure_reasons) lines.push(`- ${f.count} × ${f.reason.replace(/\|/g, '\\|')}`);
  return lines.join('\n') + '\n';
}
