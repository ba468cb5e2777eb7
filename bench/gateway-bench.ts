/**
 * `npm run bench`: the gateway's added latency and throughput, measured against a direct
 * connection to the same backend, in one run.
 *
 * Starts the simulator and the gateway as separate processes on loopback (from dist/, as in
 * production), then for non-streaming and streaming (20 chunks) at concurrency 1 and 64 drives the
 * same request directly to the simulator and through Portico (with authentication and system
 * prompt injection on). Reports req/s, p50/p99 latency, time to first token, the ratios, gateway
 * CPU per request (from /proc) and gateway RSS under load. The same load also goes through a bare
 * proxy (bench/bare-proxy.ts: Fastify + undici, nothing else) whose CPU per request, measured in
 * the same run, is the floor the gateway's CPU is compared with. Writes bench/report.json and
 * bench/report.md.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { spawn } from 'node:child_process';
import { freePort, percentile, procStats, root, round, startProcess, waitHttp } from './lib.js';

const KEY = 'sk-bench-tenant';

interface PhaseResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  ttft_p50_ms?: number;
  ttft_p99_ms?: number;
  gateway_cpu_us_per_req?: number;
  gateway_rss_mb_max?: number;
}

async function runPhase(opts: {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  stream: boolean;
  concurrency: number;
  count: number;
  maxSeconds: number;
  gatewayPid?: number;
}): Promise<PhaseResult> {
  const pool = new Pool(opts.origin, { connections: opts.concurrency, keepAliveTimeout: 30_000 });
  const latencies: number[] = [];
  const ttfts: number[] = [];
  let errors = 0;
  let issued = 0;
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    const res = await pool.request({
      method: 'POST',
      path: opts.path,
      headers: opts.headers,
      body: opts.body,
    });
    if (opts.stream) {
      let first = true;
      for await (const _chunk of res.body) {
        if (first) {
          ttfts.push(performance.now() - t0);
          first = false;
        }
      }
    } else {
      await res.body.arrayBuffer();
    }
    if (res.statusCode !== 200) errors++;
    latencies.push(performance.now() - t0);
  };
  // Warm-up: connections, JIT.
  for (let round = 0; round < 3; round++) {
    await Promise.all(
      Array.from({ length: Math.min(opts.concurrency * 4, 400) }, () => one().catch(() => undefined)),
    );
  }
  latencies.length = 0;
  ttfts.length = 0;
  errors = 0;
  let rssMax = 0;
  const before = opts.gatewayPid ? await procStats(opts.gatewayPid) : undefined;
  const sampler = opts.gatewayPid
    ? setInterval(() => {
        void procStats(opts.gatewayPid as number).then(
          (s) => (rssMax = Math.max(rssMax, s.rssMb)),
          () => undefined,
        );
      }, 100)
    : undefined;
  const started = performance.now();
  const deadline = started + opts.maxSeconds * 1000;
  const worker = async (): Promise<void> => {
    while (issued < opts.count && performance.now() < deadline) {
      issued++;
      try {
        await one();
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  if (sampler) clearInterval(sampler);
  const after = opts.gatewayPid ? await procStats(opts.gatewayPid) : undefined;
  await pool.close();
  latencies.sort((a, b) => a - b);
  ttfts.sort((a, b) => a - b);
  const n = latencies.length;
  const r: PhaseResult = {
    requests: n,
    errors,
    seconds: round(seconds, 3),
    rps: round(n / seconds, 1),
    p50_ms: round(percentile(latencies, 50), 3),
    p99_ms: round(percentile(latencies, 99), 3),
  };
  if (opts.stream) {
    r.ttft_p50_ms = round(percentile(ttfts, 50), 3);
    r.ttft_p99_ms = round(percentile(ttfts, 99), 3);
  }
  if (before && after) {
    r.gateway_cpu_us_per_req = round(((after.cpuSeconds - before.cpuSeconds) / Math.max(1, n)) * 1e6, 1);
    r.gateway_rss_mb_max = round(Math.max(rssMax, after.rssMb), 1);
  }
  return r;
}

async function main(): Promise<void> {
  const loadAtStart = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const dir = await mkdtemp(join(tmpdir(), 'portico-bench-'));
  const simPort = await freePort();
  const gwPort = await freePort();
  const sim = startProcess(['sim', '--port', String(simPort), '--output-tokens', '20']);
  const simUrl = `http://127.0.0.1:${simPort}`;
  await waitHttp(`${simUrl}/health`);
  const configFile = join(dir, 'bench.yaml');
  await writeFile(
    configFile,
    [
      `server: { host: 127.0.0.1, port: ${gwPort}, upstream_pool: { connections: 128 } }`,
      'logging: { level: warn }',
      'tenants:',
      '  - id: bench',
      '    system_prompt: "You are a helpful assistant for the benchmark tenant. Answer briefly."',
      '    prompt_policy: prepend',
      `    api_keys: [{ value: ${KEY} }]`,
      'models:',
      '  bench:',
      `    backends: [{ id: sim, provider: openai, base_url: "${simUrl}/v1", model: sim }]`,
    ].join('\n'),
  );
  const gw = startProcess(['start', '--config', configFile]);
  const gwUrl = `http://127.0.0.1:${gwPort}`;
  await waitHttp(`${gwUrl}/health`);
  const gwPid = gw.pid as number;
  const barePort = await freePort();
  const bare = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/bare-proxy.ts'), String(barePort), simUrl],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const bareUrl = `http://127.0.0.1:${barePort}`;
  await waitHttp(`${bareUrl}/health`);
  const barePid = bare.pid as number;

  const setSim = async (patch: Record<string, unknown>): Promise<void> => {
    const r = await fetch(`${simUrl}/sim/config`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(patch),
    });
    if (!r.ok) throw new Error(`sim config failed: ${await r.text()}`);
  };

  const messages = [{ role: 'user', content: 'Summarise the benefits of an LLM gateway in one paragraph.' }];
  const results: Record<string, { direct: PhaseResult; portico: PhaseResult; bare: PhaseResult }> = {};
  const scenarios = [
    { name: 'non-streaming c=1', stream: false, concurrency: 1, count: 3000, maxSeconds: 5 },
    { name: 'non-streaming c=64', stream: false, concurrency: 64, count: 30000, maxSeconds: 5 },
    { name: 'streaming (20 chunks) c=1', stream: true, concurrency: 1, count: 1000, maxSeconds: 5 },
    { name: 'streaming (20 chunks) c=64', stream: true, concurrency: 64, count: 10000, maxSeconds: 5 },
  ];
  for (const s of scenarios) {
    // Streams: 1 ms between chunks, like a fast GPU backend; non-streaming: answer at once.
    await setSim({ ttft_ms: 0, itl_ms: s.stream ? 1 : 0, output_tokens: 20 });
    const bodyFor = (model: string): string =>
      JSON.stringify({
        model,
        messages,
        max_tokens: 20,
        stream: s.stream,
        ...(s.stream ? { stream_options: { include_usage: true } } : {}),
      });
    // The same load, against one target: the simulator itself, the gateway, the bare proxy.
    const phase = (origin: string, model: string, extra: Record<string, string>, pid?: number) =>
      runPhase({
        origin,
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', ...extra },
        body: bodyFor(model),
        stream: s.stream,
        concurrency: s.concurrency,
        count: s.count,
        maxSeconds: s.maxSeconds,
        ...(pid !== undefined ? { gatewayPid: pid } : {}),
      });
    const direct = await phase(simUrl, 'sim', {});
    const portico = await phase(gwUrl, 'bench', { authorization: `Bearer ${KEY}` }, gwPid);
    const bareResult = await phase(bareUrl, 'bench', {}, barePid);
    results[s.name] = { direct, portico, bare: bareResult };
    process.stderr.write(
      `${s.name}: direct ${direct.rps} req/s p50 ${direct.p50_ms} ms | portico ${portico.rps} req/s p50 ${portico.p50_ms} ms, cpu ${portico.gateway_cpu_us_per_req} us/req | bare proxy cpu ${bareResult.gateway_cpu_us_per_req} us/req\n`,
    );
  }
  gw.kill('SIGTERM');
  bare.kill('SIGTERM');
  sim.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });

  const report = {
    generated_at: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      load_avg_1m_at_start: loadAtStart,
    },
    note: 'Load generator, simulator and gateway share this machine; ratios are what matter.',
    results,
  };
  await writeFile(join(root, 'bench/report.json'), JSON.stringify(report, null, 2) + '\n');
  const rows = Object.entries(results).map(([name, { direct, portico, bare: floor }]) => {
    const ttft =
      direct.ttft_p50_ms !== undefined
        ? `${direct.ttft_p50_ms} / ${portico.ttft_p50_ms} (+${round((portico.ttft_p50_ms ?? 0) - direct.ttft_p50_ms, 3)})`
        : '—';
    return `| ${name} | ${direct.rps} | ${portico.rps} | ${round(portico.rps / direct.rps, 2)} | ${direct.p50_ms} / ${portico.p50_ms} (+${round(portico.p50_ms - direct.p50_ms, 3)}) | ${direct.p99_ms} / ${portico.p99_ms} | ${ttft} | ${portico.gateway_cpu_us_per_req} | ${floor.gateway_cpu_us_per_req} (${round((portico.gateway_cpu_us_per_req ?? 0) / Math.max(1, floor.gateway_cpu_us_per_req ?? 1), 2)}×) | ${portico.gateway_rss_mb_max} | ${portico.errors} |`;
  });
  const md = [
    '# Gateway benchmark',
    '',
    `Generated by \`npm run bench\` on ${report.generated_at} — ${report.machine.cpus} × ${report.machine.cpu_model}, Node ${report.machine.node}; 1-minute load average when it started: ${report.machine.load_avg_1m_at_start} (other work on the machine slows both columns).`,
    'Simulator, gateway and load generator run as separate processes on loopback on the same machine.',
    'Through Portico = authentication (hashed key) + system prompt injection + routing + OpenAI-compatible adapter (undici pool) + metrics.',
    '',
    '| scenario | direct req/s | Portico req/s | throughput ratio | p50 ms direct / Portico (added) | p99 ms direct / Portico | TTFT p50 ms direct / Portico (added) | gateway CPU µs/req | bare proxy CPU µs/req (Portico ×) | gateway RSS MB (max) | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Bare proxy = Fastify + undici forwarding the same requests with nothing else (bench/bare-proxy.ts), measured in the same run: the floor for two HTTP hops in Node on this machine at this moment, so "Portico ×" stays comparable between runs on machines of different speed.',
    '',
    'Targets (goals, not tests): added p50 at concurrency 1 < 0.1 ms; gateway CPU per non-streaming request < 150 µs; streaming adds < 0.1 ms to TTFT; RSS under load < 100 MB.',
    '',
  ].join('\n');
  await writeFile(join(root, 'bench/report.md'), md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
