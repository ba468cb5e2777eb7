/**
 * `npm run bench:memory`: the gateway's resident memory (RSS), fresh and under load, next to a bare
 * node:http proxy, plus the modules a start-up loads.
 *
 * Everything runs as separate processes on 127.0.0.1 (ephemeral ports): a node:http mock upstream
 * (OpenAI chat completions, answered at once; streams of 20 chunks with usage), the built gateway
 * (`node dist/main.js start --config …`, so `npm run build` first) with the bench config (one
 * tenant, key auth, prompt policy none, cache off, metrics, SQLite ledger, request log: the
 * defaults), and a bare node:http proxy (parses the request JSON, re-serialises it, forwards it
 * with an undici Pool, passes the answer back) as the floor. For each target: RSS (VmRSS from
 * /proc) once it answers /health ("fresh"), its maximum while non-streaming and streaming load at
 * c=64 runs (count- and time-bounded), and after the load. It also starts `npm start`'s
 * examples/demo.yaml once for its fresh RSS (information: that config has an engine backend), and
 * runs the bench config once more under scripts/module-probe.mjs to list what start-up loaded
 * (never measured for RSS: the probe adds a loader thread).
 *
 * Both measured processes run with --trace-gc-nvp and bench/heap-spaces.mjs: the report gives, per
 * phase, the bytes the scavenger promoted per request, the GC counts, and V8's heap spaces after
 * the load (where RSS under load sits, for the floor and the gateway).
 *
 * Options: --flags="<node flags>" adds node flags to the gateway only (e.g.
 * "--max-semi-space-size=8"), to compare V8 heap settings on RSS and throughput; --seconds N per
 * load phase (default 5); --no-report leaves bench/memory-report.md alone; --no-demo skips the
 * demo config; --config FILE measures another gateway config (its server.port is overridden);
 * --gateway PATH runs another build's main.js (e.g. an older commit's, for before/after figures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { IMAGE_MALLOC_ENV, freePort, procStats, root, round, waitHttp } from './lib.js';

const KEY = 'sk-bench-tenant';

// ---------------------------------------------------------------- measurement

interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  rss_max_mb: number;
  cpu_us_per_req: number;
  /** Scavenger (--trace-gc-nvp): bytes promoted to the old generation per answered request. */
  promoted_b_per_req: number;
  scavenges: number;
  mark_compacts: number;
}

async function load(opts: {
  origin: string;
  pid: number;
  gc: GcTally;
  model: string;
  headers: Record<string, string>;
  stream: boolean;
  concurrency: number;
  count: number;
  seconds: number;
}): Promise<LoadResult> {
  const pool = new Pool(opts.origin, { connections: opts.concurrency, keepAliveTimeout: 30_000 });
  const body = JSON.stringify({
    model: opts.model,
    messages: [{ role: 'user', content: 'Summarise the benefits of an LLM gateway in one paragraph.' }],
    max_tokens: 20,
    stream: opts.stream,
    ...(opts.stream ? { stream_options: { include_usage: true } } : {}),
  });
  let requests = 0;
  let errors = 0;
  let issued = 0;
  let rssMax = 0;
  const sampler = setInterval(() => {
    void procStats(opts.pid).then(
      (s) => (rssMax = Math.max(rssMax, s.rssMb)),
      () => undefined,
    );
  }, 100);
  const before = await procStats(opts.pid);
  const gcBefore = { ...opts.gc };
  const started = performance.now();
  const deadline = started + opts.seconds * 1000;
  const worker = async (): Promise<void> => {
    while (issued < opts.count && performance.now() < deadline) {
      issued++;
      try {
        const res = await pool.request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json', ...opts.headers },
          body,
        });
        await res.body.arrayBuffer();
        if (res.statusCode === 200) requests++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const after = await procStats(opts.pid);
  await pool.close();
  return {
    requests,
    errors,
    rps: round(requests / seconds, 0),
    rss_max_mb: round(Math.max(rssMax, after.rssMb), 1),
    cpu_us_per_req: round(((after.cpuSeconds - before.cpuSeconds) / Math.max(1, requests)) * 1e6, 1),
    promoted_b_per_req: round((opts.gc.promotedBytes - gcBefore.promotedBytes) / Math.max(1, requests), 0),
    scavenges: opts.gc.scavenges - gcBefore.scavenges,
    mark_compacts: opts.gc.markCompacts - gcBefore.markCompacts,
  };
}

/** The GC work a child reported so far on stdout (--trace-gc-nvp: one line per GC). */
interface GcTally {
  scavenges: number;
  promotedBytes: number;
  markCompacts: number;
}

/** V8's heap after a load phase (bench/heap-spaces.mjs, on SIGUSR2), in MB. */
interface HeapSpaces {
  rss: number;
  external: number;
  array_buffers: number;
  spaces: Record<string, { size: number; used: number }>;
}

interface Measured {
  child: ChildProcess;
  gc: GcTally;
  /** Ask for the heap spaces now (undefined when the child did not answer within 2 s). */
  heap(): Promise<HeapSpaces | undefined>;
}

interface TargetResult {
  /** The load run's own start (the table's figure for the bare proxy). */
  fresh_mb: number;
  /** Fresh RSS of separate starts (gateway only): it varies by a few MB with when start-up's GCs fall. */
  fresh_starts_mb?: number[];
  nonstream: LoadResult;
  stream: LoadResult;
  after_mb: number;
  /** V8's heap spaces after the streaming phase. */
  heap_after?: HeapSpaces | undefined;
  heap_note?: string;
}

function spawnNode(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...IMAGE_MALLOC_ENV, PORTICO_ADMIN_TOKEN: 'bench-admin', ...env },
  });
  let tail = '';
  child.stderr?.on('data', (c: Buffer) => (tail = (tail + c.toString()).slice(-4000)));
  child.on('exit', (code, signal) => {
    if (code && code !== 0 && signal === null)
      process.stderr.write(`child ${args.join(' ')} exited ${code}\n${tail}\n`);
  });
  return child;
}

/**
 * A process to measure: started with --trace-gc-nvp (its GC lines tallied from stdout) and the
 * heap-spaces preload. `nodeArgs` come before the script (flags), `script` and its arguments after.
 */
function spawnMeasured(nodeArgs: string[], script: string[]): Measured {
  const child = spawn(
    process.execPath,
    ['--trace-gc-nvp', '--import', join(root, 'bench/heap-spaces.mjs'), ...nodeArgs, ...script],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...IMAGE_MALLOC_ENV, PORTICO_ADMIN_TOKEN: 'bench-admin' },
    },
  );
  const gc: GcTally = { scavenges: 0, promotedBytes: 0, markCompacts: 0 };
  let rest = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (/\bgc=s\b/.test(line)) {
        gc.scavenges++;
        gc.promotedBytes += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
      } else if (/\bgc=mc\b/.test(line)) gc.markCompacts++;
    }
  });
  let errTail = '';
  let waiting: ((h: HeapSpaces) => void) | undefined;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    errTail = (errTail + d).slice(-8000);
    const m = /HEAP-SPACES (\{.*\})\n/.exec(errTail);
    if (m && waiting) {
      waiting(JSON.parse(m[1] as string) as HeapSpaces);
      waiting = undefined;
      errTail = errTail.slice((m.index ?? 0) + m[0].length);
    }
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0 && signal === null)
      process.stderr.write(`child ${script.join(' ')} exited ${code}\n${errTail}\n`);
  });
  const heap = (): Promise<HeapSpaces | undefined> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        waiting = undefined;
        resolve(undefined);
      }, 2_000);
      waiting = (h) => {
        clearTimeout(t);
        resolve(h);
      };
      child.kill('SIGUSR2');
    });
  return { child, gc, heap };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

async function settleRss(pid: number): Promise<number> {
  // Start-up work (SQLite migrations, health checks, the first GC) settles within a second.
  await new Promise((r) => setTimeout(r, 1_000));
  return round((await procStats(pid)).rssMb, 1);
}

async function measure(opts: {
  origin: string;
  target: Measured;
  model: string;
  headers: Record<string, string>;
  seconds: number;
}): Promise<TargetResult> {
  const pid = opts.target.child.pid as number;
  const fresh_mb = await settleRss(pid);
  const common = { ...opts, pid, gc: opts.target.gc, concurrency: 64 };
  const nonstream = await load({ ...common, stream: false, count: 200_000 });
  const stream = await load({ ...common, stream: true, count: 100_000 });
  const after_mb = round((await procStats(pid)).rssMb, 1);
  const heap_after = await opts.target.heap();
  return { fresh_mb, nonstream, stream, after_mb, heap_after };
}

function gatewayConfig(port: number, upstream: string, dataDir: string): string {
  return [
    `server: { host: 127.0.0.1, port: ${port}, upstream_pool: { connections: 128 } }`,
    'logging: { level: warn }',
    `state: { kind: embedded, data_dir: "${dataDir}" }`,
    'tenants:',
    '  - id: bench',
    '    prompt_policy: none',
    `    api_keys: [{ value: ${KEY} }]`,
    'models:',
    '  bench:',
    `    backends: [{ id: mock, provider: openai, base_url: "${upstream}/v1", model: mock }]`,
    '',
  ].join('\n');
}

interface ModuleSummary {
  esm_files: number;
  cjs_files: number;
  packages: Record<string, number>;
}

function summariseModules(report: { esm: string[]; cjs: string[] }): ModuleSummary {
  const packages: Record<string, number> = {};
  for (const f of [...report.esm, ...report.cjs]) {
    if (f.startsWith('node:')) continue;
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f);
    const name = m?.[1] ?? (f.includes('/dist/') ? 'portico (dist/)' : 'other');
    packages[name] = (packages[name] ?? 0) + 1;
  }
  const sorted = Object.fromEntries(Object.entries(packages).sort((a, b) => b[1] - a[1]));
  return { esm_files: report.esm.length, cjs_files: report.cjs.length, packages: sorted };
}

/** Start the gateway under the module probe, ask it (SIGUSR2) what it loaded. */
async function probeModules(
  mainJs: string,
  configFile: string,
  origin: string,
  dir: string,
): Promise<ModuleSummary> {
  const out = join(dir, 'modules.json');
  const gw = spawnNode(
    ['--import', join(root, 'scripts/module-probe.mjs'), mainJs, 'start', '--config', configFile],
    { PORTICO_MODULE_REPORT: out },
  );
  try {
    await waitHttp(`${origin}/health`, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    gw.kill('SIGUSR2');
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      try {
        return summariseModules(JSON.parse(await readFile(out, 'utf8')) as { esm: string[]; cjs: string[] });
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error('module probe wrote no report');
  } finally {
    await stop(gw);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      flags: { type: 'string', default: '' },
      seconds: { type: 'string', default: '5' },
      config: { type: 'string' },
      gateway: { type: 'string' },
      'no-report': { type: 'boolean', default: false },
      'no-demo': { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  const mainJs = values.gateway ?? join(root, 'dist/main.js');
  const flags = (values.flags ?? '').split(' ').filter(Boolean);
  const loadAtStart = round(loadavg()[0] ?? 0, 2);
  const dir = await mkdtemp(join(tmpdir(), 'portico-membench-'));
  // Mock upstream and bare proxy are plain JavaScript: no TypeScript loader in the floor's RSS.
  const childrenJs = join(root, 'bench/memory-children.mjs');
  const children: ChildProcess[] = [];
  try {
    const upPort = await freePort();
    const upstream = `http://127.0.0.1:${upPort}`;
    children.push(spawnNode([childrenJs, 'upstream', String(upPort)]));
    await waitHttp(`${upstream}/health`, 30_000);

    // The floor first: a bare node:http proxy.
    const barePort = await freePort();
    const bareTarget = spawnMeasured([], [childrenJs, 'bare', String(barePort), upstream]);
    const bare = bareTarget.child;
    children.push(bare);
    const bareOrigin = `http://127.0.0.1:${barePort}`;
    await waitHttp(`${bareOrigin}/health`, 30_000);
    process.stderr.write('bare node:http proxy…\n');
    const bareResult = await measure({
      origin: bareOrigin,
      target: bareTarget,
      model: 'bench',
      headers: {},
      seconds,
    });
    await stop(bare);

    // The gateway, bench config (or --config).
    const gwPort = await freePort();
    const configFile = join(dir, 'bench.yaml');
    if (values.config) {
      const text = await readFile(values.config, 'utf8');
      await writeFile(configFile, text);
    } else {
      await writeFile(configFile, gatewayConfig(gwPort, upstream, join(dir, 'data')));
    }
    process.stderr.write(`gateway (${values.config ?? 'bench config'}) ${flags.join(' ')}…\n`);
    const gwTarget = spawnMeasured(flags, [
      mainJs,
      'start',
      '--config',
      configFile,
      '--port',
      String(gwPort),
    ]);
    const gw = gwTarget.child;
    children.push(gw);
    const gwOrigin = `http://127.0.0.1:${gwPort}`;
    await waitHttp(`${gwOrigin}/health`, 30_000);
    const gwResult = await measure({
      origin: gwOrigin,
      target: gwTarget,
      model: 'bench',
      headers: { authorization: `Bearer ${KEY}` },
      seconds,
    });
    await stop(gw);
    // Fresh RSS of more starts (the young generation grows during start-up; where its GCs fall
    // moves the figure by several MB): the table shows the median of all starts.
    const starts = [gwResult.fresh_mb];
    for (let i = 0; i < 4; i++) {
      const port = await freePort();
      const again = spawnNode([...flags, mainJs, 'start', '--config', configFile, '--port', String(port)]);
      children.push(again);
      await waitHttp(`http://127.0.0.1:${port}/health`, 30_000);
      starts.push(await settleRss(again.pid as number));
      await stop(again);
    }
    gwResult.fresh_starts_mb = starts;
    gwResult.fresh_mb = median(starts);

    // `npm start`'s demo config: fresh RSS only (an engine backend, offline here: its fallback).
    let demoFresh: number | undefined;
    if (!values['no-demo']) {
      const demoPort = await freePort();
      const demo = spawnNode(
        [...flags, mainJs, 'start', '--config', join(root, 'examples/demo.yaml'), '--port', String(demoPort)],
        { PORTICO_DATA_DIR: join(dir, 'demo-data'), PORTICO_DEMO_MODEL: join(dir, 'absent.gguf') },
      );
      children.push(demo);
      await waitHttp(`http://127.0.0.1:${demoPort}/health`, 30_000);
      demoFresh = await settleRss(demo.pid as number);
      await stop(demo);
    }

    // What start-up loads (bench config), through the module probe.
    const probePort = await freePort();
    const probeConfig = join(dir, 'probe.yaml');
    await writeFile(probeConfig, gatewayConfig(probePort, upstream, join(dir, 'probe-data')));
    const modules = await probeModules(mainJs, probeConfig, `http://127.0.0.1:${probePort}`, dir);

    const report = {
      generated_at: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpu_model: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        load_avg_1m_at_start: loadAtStart,
      },
      gateway_node_flags: flags,
      seconds_per_phase: seconds,
      bare: bareResult,
      portico: gwResult,
      demo_fresh_mb: demoFresh,
      modules,
    };
    printAndWrite(report, !values['no-report']);
  } finally {
    for (const c of children.reverse()) await stop(c);
    await rm(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function printAndWrite(
  r: {
    generated_at: string;
    machine: { cpus: number; cpu_model: string; node: string; load_avg_1m_at_start: number };
    gateway_node_flags: string[];
    seconds_per_phase: number;
    bare: TargetResult;
    portico: TargetResult;
    demo_fresh_mb: number | undefined;
    modules: ModuleSummary;
  },
  write: boolean,
): void {
  const underLoad = (t: TargetResult): number => Math.max(t.nonstream.rss_max_mb, t.stream.rss_max_mb);
  const ratio = round(underLoad(r.portico) / underLoad(r.bare), 2);
  const row = (name: string, t: TargetResult): string =>
    `| ${name} | ${t.fresh_mb} | ${t.nonstream.rss_max_mb} | ${t.stream.rss_max_mb} | ${t.after_mb} | ${t.nonstream.rps} | ${t.stream.rps} | ${t.nonstream.cpu_us_per_req} / ${t.stream.cpu_us_per_req} | ${t.nonstream.errors + t.stream.errors} |`;
  const table = [
    '| process | RSS fresh (MB) | RSS max, non-streaming c=64 (MB) | RSS max, 20-chunk streams c=64 (MB) | RSS after load (MB) | req/s | streams/s | CPU µs per req / per stream | errors |',
    '|---|---|---|---|---|---|---|---|---|',
    row('bare node:http proxy', r.bare),
    row(
      `Portico, bench config${r.gateway_node_flags.length ? ` (${r.gateway_node_flags.join(' ')})` : ''}`,
      r.portico,
    ),
  ];
  const space = (t: TargetResult, name: string): string => {
    const sp = t.heap_after?.spaces[name];
    return sp ? `${sp.used} / ${sp.size}` : '—';
  };
  const gcRow = (name: string, t: TargetResult): string =>
    `| ${name} | ${t.nonstream.promoted_b_per_req} / ${t.stream.promoted_b_per_req} | ${t.nonstream.scavenges} / ${t.stream.scavenges} | ${t.nonstream.mark_compacts} / ${t.stream.mark_compacts} | ${space(t, 'new')} | ${space(t, 'old')} | ${t.heap_after ? `${t.heap_after.external} (${t.heap_after.array_buffers})` : '—'} |`;
  const gcTable = [
    '| process | bytes promoted per request / per stream | scavenges (non-streaming / streams) | mark-compacts | young generation after load, used / committed (MB) | old generation after load, used / committed (MB) | external (ArrayBuffers) MB |',
    '|---|---|---|---|---|---|---|',
    gcRow('bare node:http proxy', r.bare),
    gcRow('Portico, bench config', r.portico),
  ];
  const top = Object.entries(r.modules.packages)
    .slice(0, 25)
    .map(([p, n]) => `${p} (${n})`)
    .join(', ');
  const md = [
    '# Memory benchmark',
    '',
    `Generated by \`npm run bench:memory\` on ${r.generated_at} — ${r.machine.cpus} × ${r.machine.cpu_model}, Node ${r.machine.node}; 1-minute load average when it started: ${r.machine.load_avg_1m_at_start}.`,
    `RSS is VmRSS from /proc, sampled every 100 ms. Load: c=64 over keep-alive connections from a separate process, ${r.seconds_per_phase} s per phase (non-streaming, then 20-chunk streams), against a node:http mock upstream on loopback. The gateway runs from dist/ with the bench config (one tenant, key auth, prompt policy none, cache off, metrics, SQLite ledger, request log).`,
    '',
    ...table,
    '',
    `- Fresh RSS, bench config: **${r.portico.fresh_mb} MB**, the median of ${r.portico.fresh_starts_mb?.length ?? 1} starts (${(r.portico.fresh_starts_mb ?? [r.portico.fresh_mb]).join(', ')} MB) (target ≤ 90 MB).`,
    `- RSS under c=64 load: **${underLoad(r.portico)} MB** = **${ratio}×** the bare node:http proxy's ${underLoad(r.bare)} MB (target ≤ 1.3×).`,
    ...(r.demo_fresh_mb !== undefined
      ? [
          `- Fresh RSS, \`npm start\` (examples/demo.yaml: two tenants, engine backend whose model file is absent here, simulator fallback): ${r.demo_fresh_mb} MB.`,
        ]
      : []),
    '',
    '## Where the memory under load is',
    '',
    "Both processes run with `--trace-gc-nvp` (the scavenger's promoted bytes and the GCs are tallied per phase from its output) and bench/heap-spaces.mjs, which reports V8's heap spaces on SIGUSR2 after the streaming phase. An object that survives two scavenges is promoted to the old generation and stays there, dead or alive, until the next mark-compact: bytes promoted per request is the rate at which the old generation fills, and the old generation's used size after load is live data plus that garbage.",
    '',
    ...gcTable,
    '',
    `## Modules loaded at start-up (bench config)`,
    '',
    `${r.modules.esm_files} ES modules, ${r.modules.cjs_files} CommonJS files (through scripts/module-probe.mjs). Files per package: ${top}.`,
    '',
  ].join('\n');
  process.stdout.write(md + '\n');
  if (write) {
    void writeFile(join(root, 'bench/memory-report.md'), md);
    void writeFile(join(root, 'bench/memory-report.json'), JSON.stringify(r, null, 2) + '\n');
  }
}

await main();
