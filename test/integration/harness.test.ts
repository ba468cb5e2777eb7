import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PromptRecord } from '../../src/promptset/types.js';
import { generatePromptset } from '../../src/promptset/generate.js';
import { parseReport, runBench, type BenchReport, type Comparison } from '../../src/harness/index.js';
import { runBenchCommand } from '../../src/cli/bench.js';
import { startFakeOpenAI } from '../helpers/fake-openai.js';
import { ACME_KEY, demoConfig, startTestGateway } from '../support/gateway.js';

function rec(id: string, category: string, prompt: string, expect: PromptRecord['expect']): PromptRecord {
  return { id, scenario: 't', dataset: 'd', category, prompt, max_tokens: 32, expect, prompt_tokens: 5 };
}

const RECORDS: PromptRecord[] = [
  rec('p1', 'definition', 'What is data?', { contains_any: ['data'] }),
  rec('p2', 'code', 'def is_prime please', { regex: 'def\\s+is_prime' }),
  rec('p3', 'definition', 'hello', { contains_any: ['zebra'] }),
  rec('p4', 'definition', 'status:500', { not_empty: true }),
  rec('p5', 'definition', 'status:429', { not_empty: true }),
  rec('p6', 'definition', 'sleep:1500', { not_empty: true }),
  rec('p7', 'definition', 'garbage', { not_empty: true }),
  rec('p8', 'summarization', 'json', null),
];

const REPORT_KEYS = [
  'schema_version',
  'run_id',
  'target',
  'promptset',
  'config',
  'started_at',
  'finished_at',
  'wall_s',
  'summary',
  'by_category',
  'samples',
];
const SUMMARY_KEYS = [
  'total',
  'passed',
  'failed',
  'pass_rate',
  'errors_by_class',
  'top_failure_reasons',
  'latency_ms',
  'ttft_ms',
  'decode_tokens_per_s',
  'throughput',
  'tokens',
  'judge',
];

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'portico-bench-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a CLI command with stdout captured. */
async function cli(argv: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await runBenchCommand(argv);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

async function writeRecords(dir: string, records: PromptRecord[]): Promise<string> {
  const p = join(dir, 'promptset.jsonl');
  await writeFile(p, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
}

test('bench run: pass/fail, errors by class, reasons, report shape (JSON + Markdown)', async () => {
  const fake = await startFakeOpenAI();
  try {
    await withTmp(async (dir) => {
      const ps = await writeRecords(dir, RECORDS);
      const args = [
        'run',
        '--promptset',
        ps,
        '--target',
        fake.url,
        '--key',
        'sk-test',
        '--model',
        'm1',
        '--concurrency',
        '3',
      ];
      const out = await cli([...args, '--run-id', 'r1', '--out', dir, '--timeout-ms', '400', '--quiet']);
      assert.match(out, /run r1: 8 requests, 3 passed/);
      const report = parseReport(await readFile(join(dir, 'r1.json'), 'utf8'), 'r1.json');
      assert.deepEqual(Object.keys(report), REPORT_KEYS);
      assert.deepEqual(Object.keys(report.summary), SUMMARY_KEYS);
      const s = report.summary;
      assert.equal(s.total, 8);
      assert.equal(s.passed, 3);
      assert.equal(s.pass_rate, 0.375);
      assert.deepEqual(s.errors_by_class, {
        http_4xx: 1,
        http_5xx: 1,
        timeout: 1,
        connect: 0,
        invalid_response: 1,
        check_failed: 1,
      });
      assert.ok(s.top_failure_reasons.some((r) => /contains none of \[zebra\]/.test(r.reason)));
      assert.ok(s.top_failure_reasons.some((r) => /HTTP 500: fake error 500/.test(r.reason)));
      assert.equal(s.latency_ms.count, 4, 'latency counts answered requests (passed + check_failed)');
      assert.equal(s.ttft_ms.count, 0);
      assert.equal(report.target.url, fake.url);
      assert.ok(!JSON.stringify(report).includes('sk-test'), 'the key never lands in the report');
      assert.deepEqual(Object.keys(report.by_category), ['code', 'definition', 'summarization']);
      assert.deepEqual(
        report.samples.map((x) => x.id),
        RECORDS.map((r) => r.id),
      );
      const md = await readFile(join(dir, 'r1.md'), 'utf8');
      for (const h of [
        '# Bench run `r1`',
        '## Summary',
        '## Errors (no answer)',
        '## Content checks',
        '## By category',
        '## Top failure reasons',
      ])
        assert.ok(md.includes(h), h);
      // The same run again has the same shape (keys), whatever the timings.
      await cli([...args, '--run-id', 'r2', '--out', dir, '--timeout-ms', '400', '--quiet']);
      const again = JSON.parse(await readFile(join(dir, 'r2.json'), 'utf8')) as BenchReport;
      const shape = (v: unknown): unknown =>
        Array.isArray(v)
          ? v.map(shape)
          : typeof v === 'object' && v !== null
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]))
            : typeof v;
      assert.deepEqual(shape(again), shape(report));
    });
  } finally {
    await fake.close();
  }
});

test('bench run --stream measures time to first token and uses usage from the stream', async () => {
  const fake = await startFakeOpenAI();
  try {
    const run = await runBench({
      records: RECORDS.slice(0, 2),
      baseUrl: fake.url,
      target: { kind: 'chat', model: 'm1' },
      concurrency: 2,
      count: 6,
      stream: true,
      showProgress: false,
      runId: 's1',
    });
    assert.equal(run.outcomes.length, 6);
    for (const o of run.outcomes) {
      assert.equal(o.error_class, null, String(o.reason));
      assert.ok(o.ttft_ms !== null && o.ttft_ms <= o.latency_ms);
      assert.ok(o.completion_tokens > 0);
    }
  } finally {
    await fake.close();
  }
});

test('connection refused is classed as connect; --team posts to /api/{team}/predict; judge scores 1-5', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const dead = await runBench({
    records: RECORDS.slice(0, 1),
    baseUrl: `http://127.0.0.1:${port}`,
    target: { kind: 'chat', model: 'm' },
    concurrency: 1,
    count: 2,
    timeoutMs: 2000,
    showProgress: false,
    runId: 'c',
  });
  assert.deepEqual(
    dead.outcomes.map((o) => o.error_class),
    ['connect', 'connect'],
  );

  const fake = await startFakeOpenAI();
  try {
    const run = await runBench({
      records: RECORDS.slice(0, 3),
      baseUrl: fake.url,
      target: { kind: 'team', team: 'quant' },
      concurrency: 2,
      showProgress: false,
      judgeModel: 'judge',
      runId: 't',
    });
    assert.equal(run.outcomes.length, 3, 'one pass over the promptset by default');
    assert.deepEqual(
      run.outcomes.map((o) => [o.passed, o.judge_score]),
      [
        [true, 4],
        [true, 4],
        [false, 4],
      ],
    );
  } finally {
    await fake.close();
  }
});

test('a duration-only run stops on time; progress prints plain lines when not a TTY', async () => {
  const fake = await startFakeOpenAI({ delayMs: 5 });
  try {
    const lines: string[] = [];
    const run = await runBench({
      records: RECORDS.slice(0, 1),
      baseUrl: fake.url,
      target: { kind: 'chat', model: 'm' },
      concurrency: 2,
      durationMs: 300,
      progress: { isTTY: false, write: (s: string) => lines.push(s) > 0 },
      runId: 'd',
    });
    assert.equal(run.plannedCount, null);
    assert.ok(run.outcomes.length > 0);
    assert.ok(lines.length >= 1 && lines.every((l) => l.startsWith('bench: ') && l.endsWith('\n')));
  } finally {
    await fake.close();
  }
});

test('A/B split: compare finds B slower with a significant Mann-Whitney U, pass rates equal', async () => {
  const fast = await startFakeOpenAI({ delayMs: 1 });
  const slow = await startFakeOpenAI({ delayMs: 40 });
  try {
    await withTmp(async (dir) => {
      const ps = generatePromptset({ seed: 7, scenario: 'ab', dataset: 'general-qa', count: 10 });
      // Definitions echo their keywords back only when the prompt has them; use not_empty so both pass.
      const records = ps.records.map((r) => ({ ...r, expect: { not_empty: true as const } }));
      const file = await writeRecords(dir, records);
      for (const [id, fake] of [
        ['variant-a', fast],
        ['variant-b', slow],
      ] as const) {
        await cli([
          'run',
          '--promptset',
          file,
          '--target',
          fake.url,
          '--model',
          id,
          '--concurrency',
          '4',
          '--count',
          '40',
          '--run-id',
          id,
          '--out',
          dir,
          '--quiet',
        ]);
      }
      const md = await cli([
        'compare',
        join(dir, 'variant-a.json'),
        join(dir, 'variant-b.json'),
        '--out',
        join(dir, 'cmp.md'),
      ]);
      assert.match(md, /## Significance/);
      assert.match(md, /\*\*Verdict:\*\* B is slower/);
      const c = JSON.parse(
        await cli(['compare', join(dir, 'variant-a.json'), join(dir, 'variant-b.json'), '--json']),
      ) as Comparison;
      assert.equal(c.latency_ms.significant, true);
      assert.ok(c.latency_ms.test !== null && c.latency_ms.test.p < 0.01 && c.latency_ms.test.n1 === 40);
      assert.ok((c.latency_ms.p50.delta ?? 0) > 0);
      assert.equal(c.pass_rate.delta_pp, 0);
      assert.equal(c.pass_rate.significant, false);
      assert.equal(await readFile(join(dir, 'cmp.md'), 'utf8'), md);
    });
  } finally {
    await fast.close();
    await slow.close();
  }
});

test('bench CLI rejects bad arguments with messages a person can act on', async () => {
  await assert.rejects(
    runBenchCommand(['run', '--promptset', 'x.jsonl', '--target', 'http://127.0.0.1:1']),
    /required option '--run-id <id>' not specified/,
  );
  await assert.rejects(
    runBenchCommand([
      'run',
      '--promptset',
      'x.jsonl',
      '--target',
      'http://127.0.0.1:1',
      '--run-id',
      'r',
      '--model',
      'm',
      '--team',
      't',
    ]),
    /exactly one of --model M or --team T/,
  );
  await assert.rejects(
    runBenchCommand([
      'run',
      '--promptset',
      'x.jsonl',
      '--target',
      'ftp://h',
      '--run-id',
      'r',
      '--model',
      'm',
    ]),
    /--target ftp:\/\/h: use an http:\/\/ or https:\/\/ URL/,
  );
  await assert.rejects(
    runBenchCommand([
      'run',
      '--promptset',
      'x.jsonl',
      '--target',
      'http://h',
      '--run-id',
      '../evil',
      '--model',
      'm',
    ]),
    /--run-id may use/,
  );
  await assert.rejects(runBenchCommand(['compare', 'only-one.json']), /missing required argument 'run-b'/);
  await withTmp(async (dir) => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"schema_version":1}');
    await assert.rejects(runBenchCommand(['compare', bad, bad]), /not a bench report/);
  });
});

test('A/B split through the gateway: one run per variant of an 80/20 split, compared', async () => {
  const gw = await startTestGateway(
    demoConfig({
      tenants: [
        { id: 'acme-corp', prompt_policy: 'none', allowed_models: ['*'], api_keys: [{ value: ACME_KEY }] },
      ],
      models: {
        finetune: {
          split: [
            { model: 'lora-v1', weight: 80 },
            { model: 'lora-v2', weight: 20 },
          ],
        },
        'lora-v1': { backends: [{ provider: 'sim', sim: { ttft_ms: 2 } }] },
        'lora-v2': { backends: [{ provider: 'sim', sim: { ttft_ms: 30 } }] },
      },
    }),
  );
  try {
    await withTmp(async (dir) => {
      const ps = generatePromptset({ seed: 11, scenario: 'ab-gateway', dataset: 'general-qa', count: 10 });
      const records = ps.records.map((r) => ({ ...r, expect: { not_empty: true as const } }));
      const file = await writeRecords(dir, records);
      for (const variant of ['lora-v1', 'lora-v2']) {
        await cli([
          'run',
          '--promptset',
          file,
          '--target',
          gw.url,
          '--key',
          ACME_KEY,
          '--model',
          variant,
          '--concurrency',
          '4',
          '--count',
          '30',
          '--run-id',
          variant,
          '--out',
          dir,
          '--quiet',
        ]);
      }
      const c = JSON.parse(
        await cli(['compare', join(dir, 'lora-v1.json'), join(dir, 'lora-v2.json'), '--json']),
      ) as Comparison;
      assert.equal(c.pass_rate.delta_pp, 0, 'both variants answer every prompt');
      assert.ok((c.latency_ms.p50.delta ?? 0) > 0, 'the slower variant is B');
      assert.equal(c.latency_ms.significant, true);
    });
  } finally {
    await gw.close();
  }
});
