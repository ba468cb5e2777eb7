/**
 * `portico bench run --promptset FILE --target URL --key KEY [--team T | --model M] --concurrency N
 *    [--duration S | --count N] --run-id ID [--out DIR] [--stream] [--timeout-ms MS]
 *    [--judge-model M] [--min-pass-rate R] [--quiet]`
 * `portico bench compare RUN_A.json RUN_B.json [--out FILE.md] [--json]`
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePromptsetJsonl } from '../promptset/io.js';
import {
  buildReport,
  compareReports,
  parseReport,
  renderComparison,
  renderMarkdown,
  runBench,
  type Target,
} from '../harness/index.js';

const USAGE = `usage:
  portico bench run --promptset FILE --target URL [--key KEY] (--model M | --team T)
                    [--concurrency N] [--count N] [--duration S] --run-id ID [--out DIR]
                    [--stream] [--timeout-ms MS] [--judge-model M] [--min-pass-rate 0..1] [--quiet]
  portico bench compare RUN_A.json RUN_B.json [--out FILE.md] [--json]`;

function positiveNumber(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${v}"`);
  return n;
}

async function runRun(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      promptset: { type: 'string' },
      target: { type: 'string' },
      key: { type: 'string' },
      team: { type: 'string' },
      model: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      duration: { type: 'string' },
      count: { type: 'string' },
      'run-id': { type: 'string' },
      out: { type: 'string', default: 'bench/out' },
      stream: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string', default: '60000' },
      'judge-model': { type: 'string' },
      'min-pass-rate': { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.promptset || !values.target || !values['run-id'])
    throw new Error(`--promptset, --target and --run-id are required\n${USAGE}`);
  if ((values.team === undefined) === (values.model === undefined))
    throw new Error('give exactly one of --model M or --team T');
  if (values.team !== undefined && values.stream)
    throw new Error('--stream applies to --model (chat completions) only');
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(values['run-id']))
    throw new Error('--run-id may use letters, digits, ".", "_" and "-" only');
  try {
    new URL(values.target);
  } catch {
    throw new Error(`--target is not a URL: ${values.target}`);
  }
  const concurrency = positiveNumber('concurrency', values.concurrency) ?? 4;
  if (!Number.isInteger(concurrency) || concurrency > 4096)
    throw new Error('--concurrency must be an integer in 1..4096');
  const count = positiveNumber('count', values.count);
  if (count !== undefined && !Number.isInteger(count)) throw new Error('--count must be an integer');
  const durationS = positiveNumber('duration', values.duration);
  const timeoutMs = positiveNumber('timeout-ms', values['timeout-ms']) ?? 60_000;
  const minPass = values['min-pass-rate'] === undefined ? undefined : Number(values['min-pass-rate']);
  if (minPass !== undefined && !(minPass >= 0 && minPass <= 1))
    throw new Error('--min-pass-rate must be between 0 and 1');

  const text = await readFile(values.promptset, 'utf8');
  const records = parsePromptsetJsonl(text, values.promptset);
  const target: Target =
    values.team !== undefined
      ? { kind: 'team', team: values.team }
      : { kind: 'chat', model: values.model as string };
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  let run;
  try {
    run = await runBench({
      records,
      baseUrl: values.target,
      ...(values.key ? { key: values.key } : {}),
      target,
      concurrency,
      ...(count !== undefined ? { count } : {}),
      ...(durationS !== undefined ? { durationMs: durationS * 1000 } : {}),
      stream: values.stream,
      timeoutMs,
      ...(values['judge-model'] ? { judgeModel: values['judge-model'] } : {}),
      signal: ac.signal,
      showProgress: !values.quiet,
      runId: values['run-id'],
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  const report = buildReport(run, {
    runId: values['run-id'],
    baseUrl: values.target,
    target,
    stream: values.stream,
    promptsetPath: basename(values.promptset),
    promptsetSha256: createHash('sha256').update(text).digest('hex'),
    promptsetRecords: records.length,
    concurrency,
    count: count ?? null,
    durationS: durationS ?? null,
    timeoutMs,
    judgeModel: values['judge-model'] ?? null,
  });
  await mkdir(values.out, { recursive: true });
  const jsonPath = join(values.out, `${values['run-id']}.json`);
  const mdPath = join(values.out, `${values['run-id']}.md`);
  await writeFile(jsonPath, JSON.stringify(report, null, 2) + '\n');
  await writeFile(mdPath, renderMarkdown(report));
  const s = report.summary;
  const errs = Object.entries(s.errors_by_class)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  process.stdout.write(
    `run ${report.run_id}: ${s.total} requests, ${s.passed} passed (${(s.pass_rate * 100).toFixed(1)}%), ` +
      `latency p50/p95/p99 ${s.latency_ms.p50 ?? '–'}/${s.latency_ms.p95 ?? '–'}/${s.latency_ms.p99 ?? '–'} ms, ` +
      `${s.throughput.requests_per_s} req/s, ${s.throughput.completion_tokens_per_s} tok/s${errs ? `, errors ${errs}` : ''}\n` +
      `wrote ${jsonPath} and ${mdPath}\n`,
  );
  if (minPass !== undefined && s.pass_rate < minPass) {
    process.stderr.write(`pass rate ${s.pass_rate} is below --min-pass-rate ${minPass}\n`);
    process.exitCode = 1;
  }
}

async function runCompare(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 2) throw new Error(`compare needs two report files\n${USAGE}`);
  const [pa, pb] = positionals as [string, string];
  const a = parseReport(await readFile(pa, 'utf8'), pa);
  const b = parseReport(await readFile(pb, 'utf8'), pb);
  const c = compareReports(a, b);
  const md = renderComparison(c);
  if (values.out) await writeFile(values.out, md);
  process.stdout.write(values.json ? JSON.stringify(c, null, 2) + '\n' : md);
}

export async function runBenchCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'run') return runRun(rest);
  if (sub === 'compare') return runCompare(rest);
  process.stderr.write(`${USAGE}\n`);
  process.exitCode = sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
}
