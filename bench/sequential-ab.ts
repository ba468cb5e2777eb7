/**
 * A/B of two gateway builds (or one build with two sets of Node flags) by sequential runs: one
 * gateway at a time on the bench config, the same c=64 load from this process, CPU per request
 * from /proc, scavenges and mark-compacts from --trace-gc. The A and B runs alternate (the order
 * flips every round) and the medians are compared. Made for settings that change the GC's work
 * (V8 flags, allocation): the scavenge count and time follow the allocation rate and the young
 * generation's size, and move far less than CPU time with the speed of a shared VM (an A/A here
 * measured 150.2 vs 158.7 µs per request, runs from 121 to 175, with 54–80 scavenges per run).
 *
 * Usage: tsx bench/sequential-ab.ts [--a DIR] [--b DIR] [--a-flags "..."] [--b-flags "..."]
 *        [--rounds 4] [--seconds 4] [--stream] [--governed] [--a-parts LIST] [--b-parts LIST]
 * DIR holds a build's main.js (default dist for both: then pass different flags). --governed gives
 * both sides the governed tenant of gateway-bench.ts (requests/s and tokens/min limits, a daily
 * token quota, the audit log); --a-parts / --b-parts give one side only some of those parts (a
 * comma list of rps, tpm, quota, audit; "" for none), to measure what each costs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import {
  IMAGE_MALLOC_ENV,
  abConfig,
  freePort,
  partsOf,
  procStats,
  root,
  round,
  waitHttp,
  type Part,
} from './lib.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string', default: 'dist' },
    b: { type: 'string', default: 'dist' },
    'a-flags': { type: 'string', default: '' },
    'b-flags': { type: 'string', default: '' },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '4' },
    stream: { type: 'boolean', default: false },
    governed: { type: 'boolean', default: false },
    'a-parts': { type: 'string' },
    'b-parts': { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const KEY = 'sk-seq-ab';

interface Run {
  cpuUs: number;
  requests: number;
  scavenges: number;
  scavengeMs: number;
  markCompacts: number;
  rssMaxMb: number;
}

async function load(origin: string, seconds: number): Promise<number> {
  const pool = new Pool(origin, { connections: 64 });
  // A new prompt every request, as gateway-bench.ts sends (no count-cache hits in the token estimate).
  let seq = 0;
  const bodyOf = (): string =>
    JSON.stringify({
      model: 'bench',
      messages: [
        { role: 'user', content: `Summarise the benefits of an LLM gateway in one paragraph. (${++seq})` },
      ],
      max_tokens: 20,
      stream: values.stream,
      ...(values.stream ? { stream_options: { include_usage: true } } : {}),
    });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers, body: bodyOf() });
      await r.body.arrayBuffer();
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
      n++;
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  await pool.close();
  return n;
}

async function once(
  dir: string,
  flags: string,
  parts: Set<Part>,
  upstream: string,
  work: string,
): Promise<Run> {
  const port = await freePort();
  const file = join(work, 'ab.yaml');
  await rm(join(work, 'data'), { recursive: true, force: true });
  await writeFile(file, abConfig({ port, upstream, dir: work, key: KEY, parts }));
  const child = spawn(
    process.execPath,
    [
      '--trace-gc',
      ...flags.split(' ').filter((f) => f !== ''),
      join(resolve(root, dir), 'main.js'),
      'start',
      '--config',
      file,
    ],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, ...IMAGE_MALLOC_ENV, PORTICO_ADMIN_TOKEN: 'ab-admin' },
    },
  );
  let gc = '';
  let measuring = false;
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    if (measuring) gc += d;
  });
  try {
    const origin = `http://127.0.0.1:${port}`;
    await waitHttp(`${origin}/health`);
    const pid = child.pid as number;
    await load(origin, 2);
    measuring = true;
    const before = await procStats(pid);
    let rssMaxMb = before.rssMb;
    const sampler = setInterval(() => {
      void procStats(pid).then(
        (s) => (rssMaxMb = Math.max(rssMaxMb, s.rssMb)),
        () => undefined,
      );
    }, 100);
    const requests = await load(origin, SECONDS);
    clearInterval(sampler);
    const after = await procStats(pid);
    measuring = false;
    const scav = [...gc.matchAll(/Scavenge[^,]*, ([\d.]+) \//g)].map((m) => Number(m[1]));
    return {
      cpuUs: round(((after.cpuSeconds - before.cpuSeconds) / requests) * 1e6, 1),
      requests,
      scavenges: scav.length,
      scavengeMs: round(
        scav.reduce((a, b) => a + b, 0),
        1,
      ),
      markCompacts: (gc.match(/Mark-Compact/g) ?? []).length,
      rssMaxMb: round(Math.max(rssMaxMb, after.rssMb), 1),
    };
  } finally {
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'portico-seq-ab-'));
  await mkdir(work, { recursive: true });
  const mockPort = await freePort();
  const mock: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/mock-upstream.ts'), String(mockPort), '20'],
    { stdio: 'ignore', cwd: root },
  );
  try {
    await waitHttp(`http://127.0.0.1:${mockPort}/health`);
    const sides = [
      {
        name: 'A',
        dir: values.a,
        flags: values['a-flags'],
        parts: partsOf(values['a-parts'], values.governed),
        runs: [] as Run[],
      },
      {
        name: 'B',
        dir: values.b,
        flags: values['b-flags'],
        parts: partsOf(values['b-parts'], values.governed),
        runs: [] as Run[],
      },
    ];
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        const run = await once(side.dir, side.flags, side.parts, `http://127.0.0.1:${mockPort}`, work);
        side.runs.push(run);
        process.stderr.write(
          `[round ${r + 1}/${ROUNDS}] ${side.name}: ${run.cpuUs} us/req, ${run.requests} req, ${run.scavenges} scavenges (${run.scavengeMs} ms), ${run.markCompacts} mark-compacts, RSS max ${run.rssMaxMb} MB\n`,
        );
      }
    }
    const out = [
      '| side | build | flags | governed parts | CPU µs per request (median) | runs | scavenges (ms) | RSS max MB |',
      '|---|---|---|---|---|---|---|---|',
    ];
    for (const s of sides)
      out.push(
        `| ${s.name} | ${s.dir} | ${s.flags || '—'} | ${[...s.parts].join(', ') || '—'} | **${round(median(s.runs.map((x) => x.cpuUs)), 1)}** | ${s.runs.map((x) => x.cpuUs).join(', ')} | ${median(s.runs.map((x) => x.scavenges))} (${median(s.runs.map((x) => x.scavengeMs))}) | ${median(s.runs.map((x) => x.rssMaxMb))} |`,
      );
    const [a, b] = sides.map((s) => median(s.runs.map((x) => x.cpuUs))) as [number, number];
    out.push(
      '',
      `B ÷ A: ${round(b / a, 3)} (${values.stream ? '20-chunk streams' : 'non-streaming'}, c=64, ${SECONDS} s per run)`,
    );
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    mock.kill();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
