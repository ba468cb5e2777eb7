/**
 * `npm run bench:alloc`: bytes allocated per request by a gateway build under c=64 load, by
 * allocation site — V8's sampling heap profiler in the gateway's own process, the objects that
 * scavenges and mark-compacts collected included (bench/alloc-preload.ts). Unlike CPU time on a
 * shared VM (runs of one build differ by ±20%), the total repeats within ~0.5% from run to run
 * (an A/A of the governed tenant: 54,046 vs 54,243 bytes), so it resolves changes to the hot path's
 * allocation (and with it the young generation's work) that a CPU A/B cannot. Per site, bytes may
 * move between a function and one it was inlined into (dispatchUnary / withRetries) from one run
 * to the next: compare totals, and sites summed over such pairs.
 *
 * Usage: npm run bench:alloc -- [--a DIR] [--b DIR] [--governed | --parts LIST] [--stream]
 *        [--requests 8000] [--top 30] [--lines]  (npm run builds dist/ first; tsx bench/alloc-bench.ts does not)
 * --lines names Portico's sites by src/ module and line (through the bundle's source maps) instead
 * of by function: anonymous closures become `(anonymous) (pipeline/run.ts:475)`.
 * DIR holds a build's main.js (default dist, or an older revision bundled with scripts/build.mjs's
 * bundle(DIR) from a git worktree, DIR inside this checkout so its packages resolve). With --b,
 * both builds run one after the other on the same load and the table gives both and the difference
 * per site. --governed gives the gateway-bench governed tenant (requests/s and tokens/min limits, a
 * daily token quota, the audit log); --parts a subset (rps,tpm,quota,audit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import { Pool } from 'undici';
import { IMAGE_MALLOC_ENV, abConfig, freePort, partsOf, root, waitHttp } from './lib.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string', default: 'dist' },
    b: { type: 'string' },
    governed: { type: 'boolean', default: false },
    parts: { type: 'string' },
    stream: { type: 'boolean', default: false },
    requests: { type: 'string', default: '8000' },
    top: { type: 'string', default: '30' },
    lines: { type: 'boolean', default: false },
  },
});
const REQUESTS = Number(values.requests);
const WARM_UP = 15_000;
const KEY = 'sk-alloc-bench';
/** No phase may run longer than this (a stuck gateway fails the run instead of hanging it). */
const PHASE_LIMIT_MS = 120_000;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const sourceMaps = new Map<string, { map: SourceMap; dir: string } | null>();
/** `--lines`: a frame in a bundled file as its src/ module and line (`file.ts:LINE`), else undefined. */
function srcLine(f: ProfileNode['callFrame']): string | undefined {
  if (!f.url.startsWith('file://') || f.url.includes('/node_modules/')) return undefined;
  let entry = sourceMaps.get(f.url);
  if (entry === undefined) {
    const file = fileURLToPath(f.url);
    entry = existsSync(`${file}.map`)
      ? {
          map: new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload),
          dir: dirname(file),
        }
      : null;
    sourceMaps.set(f.url, entry);
  }
  const hit = entry?.map.findEntry(f.lineNumber, f.columnNumber) as
    { originalSource?: string; originalLine?: number } | undefined;
  if (!hit?.originalSource) return undefined;
  return `${hit.originalSource.replace(/^.*\/src\//, '')}:${(hit.originalLine ?? 0) + 1}`;
}

/** An allocation site as the table names it: the function, and its package or Node module. */
function siteOf(f: ProfileNode['callFrame']): string {
  const name = f.functionName || '(anonymous)';
  const url = f.url;
  if (url === '') return name;
  if (values.lines) {
    const at = srcLine(f);
    if (at !== undefined) return `${name} (${at})`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `${name} (${pkg[1]})`;
  if (url.startsWith('node:')) return `${name} (${url})`;
  if (/\/dist[^/]*\//.test(url) || url.includes('/bench/out/')) return `${name} (portico)`;
  return `${name} (${url.replace(/^.*\//, '')})`;
}

function bySite(head: ProfileNode): Map<string, number> {
  const sites = new Map<string, number>();
  const stack = [head];
  for (let n = stack.pop(); n; n = stack.pop()) {
    if (n.selfSize > 0) {
      const k = siteOf(n.callFrame);
      sites.set(k, (sites.get(k) ?? 0) + n.selfSize);
    }
    stack.push(...n.children);
  }
  return sites;
}

async function load(origin: string, n: number): Promise<void> {
  const pool = new Pool(origin, { connections: 64 });
  let seq = 0;
  let left = n;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
  const until = Date.now() + PHASE_LIMIT_MS;
  const worker = async (): Promise<void> => {
    while (left-- > 0) {
      if (Date.now() > until) throw new Error(`load did not finish in ${PHASE_LIMIT_MS} ms`);
      const r = await pool.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers,
        body: JSON.stringify({
          model: 'bench',
          // A new prompt every request, as gateway-bench.ts sends.
          messages: [
            {
              role: 'user',
              content: `Summarise the benefits of an LLM gateway in one paragraph. (${++seq})`,
            },
          ],
          max_tokens: 20,
          stream: values.stream,
          ...(values.stream ? { stream_options: { include_usage: true } } : {}),
        }),
      });
      await r.body.arrayBuffer();
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: 64 }, worker));
  } finally {
    await pool.close();
  }
}

async function waitFile(file: string): Promise<void> {
  const until = Date.now() + PHASE_LIMIT_MS;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`no heap profile at ${file}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Written in one writeFileSync: give it a moment to finish if it is large.
  await new Promise((r) => setTimeout(r, 300));
}

/** One build under load: bytes per request by site over REQUESTS requests after a warm-up. */
async function measure(
  dir: string,
  preload: string,
  upstream: string,
  work: string,
): Promise<Map<string, number>> {
  const port = await freePort();
  const config = join(work, 'alloc.yaml');
  const out = join(work, `heap-${Date.now()}.json`);
  await rm(join(work, 'data'), { recursive: true, force: true });
  const parts = partsOf(values.parts, values.governed);
  await writeFile(config, abConfig({ port, upstream, dir: work, key: KEY, parts }));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', preload, join(resolve(root, dir), 'main.js'), 'start', '--config', config],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        ...IMAGE_MALLOC_ENV,
        PORTICO_ADMIN_TOKEN: 'alloc-admin',
        ALLOC_PROFILE_OUT: out,
      },
    },
  );
  try {
    const origin = `http://127.0.0.1:${port}`;
    await waitHttp(`${origin}/health`);
    await load(origin, WARM_UP);
    child.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 200));
    await load(origin, REQUESTS);
    child.kill('SIGUSR2');
    await waitFile(out);
    const profile = JSON.parse(await readFile(out, 'utf8')) as { head?: ProfileNode; error?: string };
    if (!profile.head) throw new Error(`heap profile failed: ${profile.error ?? 'empty'}`);
    const sites = bySite(profile.head);
    for (const [k, v] of sites) sites.set(k, v / REQUESTS);
    return sites;
  } finally {
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
  }
}

function total(m: Map<string, number>): number {
  let t = 0;
  for (const v of m.values()) t += v;
  return t;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'portico-alloc-'));
  await mkdir(join(root, 'bench/out'), { recursive: true });
  const preload = join(root, 'bench/out/alloc-preload.mjs');
  const source = await readFile(join(root, 'bench/alloc-preload.ts'), 'utf8');
  await writeFile(
    preload,
    ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText,
  );
  const mockPort = await freePort();
  const mock = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/mock-upstream.ts'), String(mockPort), '20'],
    { stdio: 'ignore', cwd: root },
  );
  try {
    const upstream = `http://127.0.0.1:${mockPort}`;
    await waitHttp(`${upstream}/health`);
    const a = await measure(values.a, preload, upstream, work);
    const b = values.b === undefined ? undefined : await measure(values.b, preload, upstream, work);
    const top = Number(values.top);
    const what = `${values.stream ? '20-chunk streams' : 'non-streaming requests'}, c=64, ${fmt(REQUESTS)} measured after ${fmt(WARM_UP)}`;
    const lines: string[] = [];
    if (!b) {
      lines.push(
        `Bytes allocated per request (${what}): **${fmt(total(a))}** (${values.a})`,
        '',
        '| site | bytes per request |',
        '|---|---|',
        ...[...a]
          .sort((x, y) => y[1] - x[1])
          .slice(0, top)
          .map(([k, v]) => `| \`${k}\` | ${fmt(v)} |`),
      );
    } else {
      const keys = new Set([...a.keys(), ...b.keys()]);
      const rows = [...keys]
        .map((k) => ({ k, a: a.get(k) ?? 0, b: b.get(k) ?? 0 }))
        .sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a));
      lines.push(
        `Bytes allocated per request (${what}): A (${values.a}) **${fmt(total(a))}**, B (${values.b}) **${fmt(total(b))}** (${fmt(total(b) - total(a))})`,
        '',
        '| site | A | B | B − A |',
        '|---|---|---|---|',
        ...rows.slice(0, top).map((r) => `| \`${r.k}\` | ${fmt(r.a)} | ${fmt(r.b)} | ${fmt(r.b - r.a)} |`),
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    mock.kill();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
