/**
 * Cache bench: client-observed latency of an L1 hit and an L2 (Redis) hit against a miss, through
 * the real HTTP stack on loopback.
 *   npm run bench:cache      (needs Redis on 127.0.0.1:6379, or PORTICO_BENCH_REDIS_URL)
 * Two gateways share Redis: A answers each new question (a miss: upstream simulator with a 100 ms
 * time to first token and 32 output tokens), B then asks it once (an L2 hit: its own L1 is empty)
 * and again (an L1 hit). Env: PORTICO_BENCH_N (200). Writes bench/cache-report.md and .json.
 */
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Gateway } from '../src/app.js';
import { buildConfig } from '../src/config/load.js';
import { buildHttpServer } from '../src/http/server.js';
import { buildSimServer } from '../src/sim/server.js';
import { createLogger } from '../src/telemetry/logger.js';

const REDIS_URL = process.env.PORTICO_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const N = Number(process.env.PORTICO_BENCH_N ?? 200);
const KEY = 'sk-cache-bench';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const { app: simApp } = buildSimServer({ sim: { mode: 'lorem', ttft_ms: 100, output_tokens: 32 } });
  const simUrl = await simApp.listen({ host: '127.0.0.1', port: 0 });
  const prefix = `portico-cache-bench-${randomBytes(4).toString('hex')}:`;
  const raw = {
    server: { host: '127.0.0.1', port: 0 },
    logging: { level: 'silent' },
    admin: { token: 'bench' },
    state: { kind: 'memory' },
    cache: { l2: { enabled: true, url: REDIS_URL, key_prefix: prefix } },
    tenants: [{ id: 'bench', allowed_models: ['default'], api_keys: [{ value: KEY }] }],
    models: { default: { backends: [{ provider: 'openai', base_url: `${simUrl}/v1`, model: 'sim' }] } },
  };
  const start = async (): Promise<{ url: string; close: () => Promise<void>; gw: Gateway }> => {
    const gw = await Gateway.create(await buildConfig(raw, { env: {} }), {
      defaultMetrics: false,
      logger: createLogger('silent'),
    });
    const app = await buildHttpServer(gw);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    gw.markReady();
    return { url, gw, close: async () => (await app.close(), await gw.close()) };
  };
  const [a, b] = [await start(), await start()];
  const redis = new Redis(REDIS_URL);
  const until = Date.now() + 5000;
  while (!/portico_cache_l2_up 1/.test(await a.gw.metrics.registry.metrics()) && Date.now() < until)
    await new Promise((r) => setTimeout(r, 50));

  const ask = async (url: string, i: number): Promise<{ ms: number; cache: string }> => {
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'default',
        temperature: 0,
        max_tokens: 32,
        messages: [{ role: 'user', content: `question number ${i}: what does a cache do?` }],
      }),
    });
    await res.text();
    const tier = res.headers.get('x-portico-cache-tier');
    return {
      ms: performance.now() - t0,
      cache: `${res.headers.get('x-portico-cache')}${tier ? `:${tier}` : ''}`,
    };
  };
  const miss: number[] = [];
  const l2: number[] = [];
  const l1: number[] = [];
  const unexpected: string[] = [];
  for (let i = 0; i < N; i++) {
    const m = await ask(a.url, i);
    if (m.cache !== 'miss') unexpected.push(`A#${i}:${m.cache}`);
    miss.push(m.ms);
    // Wait for the background store to land in Redis before B asks.
    const t = Date.now();
    while ((await redis.keys(`${prefix}bench:*`)).length <= i && Date.now() - t < 2000)
      await new Promise((r) => setTimeout(r, 2));
    const h2 = await ask(b.url, i);
    if (h2.cache !== 'hit:l2') unexpected.push(`B#${i}:${h2.cache}`);
    l2.push(h2.ms);
    const h1 = await ask(b.url, i);
    if (h1.cache !== 'hit:l1') unexpected.push(`B2#${i}:${h1.cache}`);
    l1.push(h1.ms);
  }
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  await a.close();
  await b.close();
  await simApp.close();

  const row = (name: string, xs: number[]): Record<string, number | string> => ({
    case: name,
    p50_ms: Number(pct(xs, 50).toFixed(3)),
    p99_ms: Number(pct(xs, 99).toFixed(3)),
    mean_ms: Number((xs.reduce((s, x) => s + x, 0) / xs.length).toFixed(3)),
  });
  const rows = [
    row('miss (upstream, 100 ms TTFT, 32 tokens)', miss),
    row('L2 hit (Redis)', l2),
    row('L1 hit (memory)', l1),
  ];
  const result = {
    generated: new Date().toISOString(),
    node: process.version,
    requests_per_case: N,
    rows,
    speedup_l1_vs_miss: Number((pct(miss, 50) / pct(l1, 50)).toFixed(1)),
    speedup_l2_vs_miss: Number((pct(miss, 50) / pct(l2, 50)).toFixed(1)),
    unexpected,
  };
  writeFileSync('bench/cache-report.json', JSON.stringify(result, null, 2) + '\n');
  const md = [
    '# Cache benchmark',
    '',
    `Generated by \`npm run bench:cache\` on ${result.generated} (Node ${process.version}), ${N} requests per case, one client, loopback, non-streaming chat.`,
    'Two gateways share Redis: A takes each new question (miss), B asks it once (L2 hit; its L1 is empty) and again (L1 hit).',
    '',
    '| case | p50 ms | p99 ms | mean ms |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.case} | ${r.p50_ms} | ${r.p99_ms} | ${r.mean_ms} |`),
    '',
    `p50 speed-up over a miss: L1 ${result.speedup_l1_vs_miss}x, L2 ${result.speedup_l2_vs_miss}x.`,
    unexpected.length
      ? `Unexpected cache outcomes: ${unexpected.slice(0, 10).join(', ')}`
      : 'Every request had the expected cache outcome.',
    '',
  ].join('\n');
  writeFileSync('bench/cache-report.md', md);
  process.stdout.write(md);
}

await main();
