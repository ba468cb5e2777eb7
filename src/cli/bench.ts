/**
 * `portico bench run` (load harness with pass/fail checks) and `portico bench compare`; options are
 * declared in program.ts. A run exits 1 with a one-line reason when more requests than
 * --max-error-rate (default 0) got no answer, or fewer than --min-pass-rate passed their content
 * checks; content-check failures are counted apart from transport and HTTP errors.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parsePromptsetJsonl } from '../promptset/io.js';
import {
  buildReport,
  compareReports,
  parseReport,
  renderComparison,
  renderMarkdown,
  runBench,
  type BenchReport,
  type Target,
} from '../harness/index.js';
import { gatewayUrl, stdio, UsageError, type CliIO } from './common.js';

export interface BenchRunOptions {
  promptset: string;
  target: string;
  runId: string;
  key?: string;
  model?: string;
  team?: string;
  concurrency: number;
  count?: number;
  duration?: number;
  out: string;
  stream?: boolean;
  timeoutMs: number;
  judgeModel?: string;
  maxErrorRate: number;
  minPassRate?: number;
  quiet?: boolean;
}

/** The one-line reason a run failed its budget, or null. Content-check failures are not errors. */
export function benchVerdict(
  report: BenchReport,
  maxErrorRate: number,
  minPassRate: number | undefined,
): string | null {
  const s = report.summary;
  const checkFailed = s.errors_by_class.check_failed ?? 0;
  const errors = s.total - s.passed - checkFailed;
  const errorRate = s.total ? errors / s.total : 0;
  if (errorRate > maxErrorRate) {
    const reasons = new Map<string, number>();
    for (const x of report.samples)
      if (x.error_class !== null && x.error_class !== 'check_failed' && x.reason !== null)
        reasons.set(x.reason, (reasons.get(x.reason) ?? 0) + 1);
    const top = [...reasons.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'see the report';
    const classes = Object.entries(s.errors_by_class)
      .filter(([k, v]) => v > 0 && k !== 'check_failed')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    let hint = '';
    if (/^HTTP 401/.test(top))
      hint = ` (the gateway at ${report.target.url} does not accept this key: pass --key with a key of a tenant it knows)`;
    else if (/^HTTP 404/.test(top))
      hint = ` (does the gateway at ${report.target.url} define this model or team?)`;
    else if ((s.errors_by_class.connect ?? 0) > 0)
      hint = ` (cannot reach ${report.target.url}: is the gateway running there?)`;
    return (
      `${errors} of ${s.total} requests got no answer (${(errorRate * 100).toFixed(1)}%, --max-error-rate is ${(maxErrorRate * 100).toFixed(1)}%): ` +
      `${classes}; most common: ${top}${hint}`
    );
  }
  if (minPassRate !== undefined && s.pass_rate < minPassRate)
    return `pass rate ${(s.pass_rate * 100).toFixed(1)}% is below --min-pass-rate ${(minPassRate * 100).toFixed(1)}% (${checkFailed} answer(s) failed their content checks)`;
  return null;
}

export async function benchRun(o: BenchRunOptions, io: CliIO): Promise<number> {
  if ((o.team === undefined) === (o.model === undefined))
    throw new UsageError('give exactly one of --model M or --team T');
  if (o.team !== undefined && o.stream)
    throw new UsageError('--stream applies to --model (chat completions) only');
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(o.runId))
    throw new UsageError('--run-id may use letters, digits, ".", "_" and "-" only');
  const baseUrl = gatewayUrl('--target', o.target);
  if (o.concurrency > 4096) throw new UsageError('--concurrency must be an integer in 1..4096');
  const key = o.key ?? io.env.PORTICO_API_KEY;
  const text = await readFile(o.promptset, 'utf8');
  const records = parsePromptsetJsonl(text, o.promptset);
  const target: Target =
    o.team !== undefined ? { kind: 'team', team: o.team } : { kind: 'chat', model: o.model as string };
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  let run;
  try {
    run = await runBench({
      records,
      baseUrl,
      ...(key ? { key } : {}),
      target,
      concurrency: o.concurrency,
      ...(o.count !== undefined ? { count: o.count } : {}),
      ...(o.duration !== undefined ? { durationMs: o.duration * 1000 } : {}),
      stream: o.stream === true,
      timeoutMs: o.timeoutMs,
      ...(o.judgeModel ? { judgeModel: o.judgeModel } : {}),
      signal: ac.signal,
      showProgress: !o.quiet,
      runId: o.runId,
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  const report = buildReport(run, {
    runId: o.runId,
    baseUrl,
    target,
    stream: o.stream === true,
    promptsetPath: basename(o.promptset),
    promptsetSha256: createHash('sha256').update(text).digest('hex'),
    promptsetRecords: records.length,
    concurrency: o.concurrency,
    count: o.count ?? null,
    durationS: o.duration ?? null,
    timeoutMs: o.timeoutMs,
    judgeModel: o.judgeModel ?? null,
  });
  await mkdir(o.out, { recursive: true });
  const jsonPath = join(o.out, `${o.runId}.json`);
  const mdPath = join(o.out, `${o.runId}.md`);
  await writeFile(jsonPath, JSON.stringify(report, null, 2) + '\n');
  await writeFile(mdPath, renderMarkdown(report));
  const s = report.summary;
  const checkFailed = s.errors_by_class.check_failed ?? 0;
  const errs = Object.entries(s.errors_by_class)
    .filter(([k, v]) => v > 0 && k !== 'check_failed')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  io.out(
    `run ${report.run_id}: ${s.total} requests, ${s.passed} passed (${(s.pass_rate * 100).toFixed(1)}%), ` +
      `latency p50/p95/p99 ${s.latency_ms.p50 ?? '–'}/${s.latency_ms.p95 ?? '–'}/${s.latency_ms.p99 ?? '–'} ms, ` +
      `${s.throughput.requests_per_s} req/s, ${s.throughput.completion_tokens_per_s} tok/s` +
      `${errs ? `; errors (no answer): ${errs}` : ''}` +
      `${checkFailed ? `; check_failed=${checkFailed} (answers that failed their content checks)` : ''}\n` +
      `wrote ${jsonPath} and ${mdPath}`,
  );
  const verdict = benchVerdict(report, o.maxErrorRate, o.minPassRate);
  if (verdict) {
    io.err(`portico bench run: ${verdict}`);
    return 1;
  }
  return 0;
}

export async function benchCompare(
  pa: string,
  pb: string,
  o: { out?: string; json?: boolean },
  io: CliIO,
): Promise<number> {
  const a = parseReport(await readFile(pa, 'utf8'), pa);
  const b = parseReport(await readFile(pb, 'utf8'), pb);
  const c = compareReports(a, b);
  const md = renderComparison(c);
  if (o.out) await writeFile(o.out, md);
  io.out((o.json ? JSON.stringify(c, null, 2) : md).replace(/\n$/, ''));
  return 0;
}

/** `portico bench ARGS...` in-process (tests); output on process.stdout/stderr. */
export async function runBenchCommand(argv: string[]): Promise<number> {
  const { runCli } = await import('./program.js');
  return runCli(['bench', ...argv], stdio(process.env));
}
