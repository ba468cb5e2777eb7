/**
 * State-layer bench: global accuracy across processes sharing Redis, and per-operation throughput.
 *   npx tsx bench/state-bench.ts            (needs Redis on 127.0.0.1:6379 and Postgres for the ledger figure)
 * Env: PORTICO_BENCH_REDIS_URL, PORTICO_BENCH_POSTGRES_URL, PORTICO_BENCH_PROCS (3), PORTICO_BENCH_SECONDS (4).
 * Writes bench/out/state-bench.json.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { MemoryCounterStore } from '../src/state/memory/counters.js';
import { connectRedis, waitReady, type RedisContext } from '../src/state/redis/client.js';
import { RedisCounterStore } from '../src/state/redis/counters.js';
import { RedisQuotaStore } from '../src/state/redis/quotas.js';
import { openSqlite } from '../src/state/sqlite/db.js';
import { SqliteQuotaStore } from '../src/state/sqlite/quotas.js';
import { SqliteLedgerStore } from '../src/state/sqlite/catalog.js';
import { dropSchema, openPostgres } from '../src/state/postgres/db.js';
import { PgLedgerStore } from '../src/state/postgres/catalog.js';
import { uniqueName } from '../src/state/factory.js';
import type { LedgerRecord, QuotaScope } from '../src/state/ports.js';

const REDIS_URL = process.env.PORTICO_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.PORTICO_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PROCS = Number(process.env.PORTICO_BENCH_PROCS ?? 3);
const SECONDS = Number(process.env.PORTICO_BENCH_SECONDS ?? 4);
const RATE = 50;
const BURST = 50;
const QUOTA_TOKENS = 20_000;

interface ChildResult {
  admitted: number[];
  refused: number;
  quotaOk: number;
  quotaTokens: number;
  quotaRefused: number;
}

async function child(prefix: string, tenant: string, startAt: number): Promise<void> {
  const redis = connectRedis(REDIS_URL);
  await waitReady(redis);
  const ctx: RedisContext = { redis, prefix, mode: 'fail_closed' };
  const counters = new RedisCounterStore(ctx);
  const quotas = new RedisQuotaStore(ctx);
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  const out: ChildResult = { admitted: [], refused: 0, quotaOk: 0, quotaTokens: 0, quotaRefused: 0 };
  // Rate: 20 concurrent loops per process, as fast as Redis answers, for SECONDS.
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      for (let i = 0; i < 1_000_000 && Date.now() < end; i++) {
        const r = await counters.consume({ tenant, name: 'rps' }, { ratePerSec: RATE, burst: BURST });
        if (r.allowed) out.admitted.push(Date.now());
        else out.refused++;
      }
    }),
  );
  // Quota: 200 concurrent requests per process; estimate 100, actual 60..100 tokens.
  const scopes: QuotaScope[] = [{ name: 'tenant', limits: { day: { tokens: QUOTA_TOKENS } } }];
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      for (let round = 0; round < 1000; round++) {
        const r = await quotas.reserve({ tenant, scopes, tokens: 100 });
        if (!r.ok) {
          out.quotaRefused++;
          return;
        }
        const actual = 60 + ((i * 7 + round) % 41);
        await quotas.commit(r.reservation, { tokens: actual });
        out.quotaOk++;
        out.quotaTokens += actual;
      }
    }),
  );
  process.send?.(out);
  redis.disconnect();
}

async function runChildren(): Promise<Record<string, unknown>> {
  const prefix = `portico-bench:${uniqueName('')}:`;
  const tenant = 'bench';
  const startAt = Date.now() + 1500;
  const file = fileURLToPath(import.meta.url);
  const results = await Promise.all(
    Array.from(
      { length: PROCS },
      () =>
        new Promise<ChildResult>((resolve, reject) => {
          const c = fork(file, ['child', prefix, tenant, String(startAt)], { execArgv: ['--import', 'tsx'] });
          c.once('message', (m) => resolve(m as ChildResult));
          c.once('error', reject);
          c.once('exit', (code) => (code ? reject(new Error(`child exited ${code}`)) : undefined));
        }),
    ),
  );
  const times = results.flatMap((r) => r.admitted).sort((a, b) => a - b);
  const first = times[0] ?? 0;
  const last = times[times.length - 1] ?? 0;
  const elapsedS = (last - first) / 1000;
  const bound = BURST + RATE * elapsedS;
  const admitted = times.length;
  const quotaTokens = results.reduce((s, r) => s + r.quotaTokens, 0);
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`${prefix}*`);
  if (keys.length) await r.del(...keys);
  r.disconnect();
  return {
    processes: PROCS,
    rate: {
      ratePerSec: RATE,
      burst: BURST,
      seconds: SECONDS,
      admitted,
      bound: Math.round(bound),
      overshootPct: +(((admitted - bound) / bound) * 100).toFixed(2),
      refused: results.reduce((s, x) => s + x.refused, 0),
    },
    quota: {
      limitTokens: QUOTA_TOKENS,
      concurrent: PROCS * 200,
      committedTokens: quotaTokens,
      admitted: results.reduce((s, x) => s + x.quotaOk, 0),
      overshootTokens: Math.max(0, quotaTokens - QUOTA_TOKENS),
    },
  };
}

async function opsPerSec(n: number, conc: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return Math.round(n / ((performance.now() - t0) / 1000));
}

function rec(i: number, tag: string): LedgerRecord {
  const id = `${tag}-${i}`;
  return {
    id,
    time: Date.now(),
    tenant: 'bench',
    key_id: 'k',
    model: 'm',
    backend: 'b',
    tokens_in: 10,
    tokens_out: 10,
    estimated: false,
    cost_usd: 0.001,
    latency_ms: 5,
    status: 200,
    cache_hit: false,
    request_id: id,
  };
}

async function throughput(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const mem = new MemoryCounterStore();
  out.memory_consume = await opsPerSec(200_000, 1, (i) =>
    mem.consume({ tenant: 't', name: `k${i % 100}` }, { ratePerSec: 1e6, burst: 1e6 }),
  );
  const redis = connectRedis(REDIS_URL);
  await waitReady(redis);
  const prefix = `portico-bench:${uniqueName('')}:`;
  const ctx: RedisContext = { redis, prefix, mode: 'fail_closed' };
  const rc = new RedisCounterStore(ctx);
  out.redis_consume_c32 = await opsPerSec(20_000, 32, (i) =>
    rc.consume({ tenant: 't', name: `k${i % 100}` }, { ratePerSec: 1e6, burst: 1e6 }),
  );
  const rq = new RedisQuotaStore(ctx);
  const scopes: QuotaScope[] = [
    { name: 'tenant', limits: { day: { tokens: 1e12 } } },
    { name: 'key:k', limits: { month: { requests: 1e9 } } },
  ];
  out.redis_reserve_commit_c32 = await opsPerSec(10_000, 32, async () => {
    const r = await rq.reserve({ tenant: 't', scopes, tokens: 100 });
    if (r.ok) await rq.commit(r.reservation, { tokens: 80 });
  });
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  const db = openSqlite(`${process.env.TMPDIR ?? '/tmp'}/portico-bench-${uniqueName('')}`);
  const sq = new SqliteQuotaStore(db);
  out.sqlite_reserve_commit = await opsPerSec(10_000, 32, async () => {
    const r = await sq.reserve({ tenant: 't', scopes, tokens: 100 });
    if (r.ok) await sq.commit(r.reservation, { tokens: 80 });
  });
  const sl = new SqliteLedgerStore(db);
  out.sqlite_ledger_records =
    500 *
    (await opsPerSec(40, 1, (i) => sl.append(Array.from({ length: 500 }, (_, j) => rec(i * 500 + j, 's')))));
  db.close();
  try {
    const pg = await openPostgres(PG_URL, { schema: uniqueName('portico_bench_') });
    const pl = new PgLedgerStore(pg);
    out.postgres_ledger_records =
      500 *
      (await opsPerSec(40, 1, (i) =>
        pl.append(Array.from({ length: 500 }, (_, j) => rec(i * 500 + j, 'p'))),
      ));
    await dropSchema(pg);
    await pg.pool.end();
  } catch (e) {
    console.error('postgres ledger bench skipped:', String(e));
  }
  return out;
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] ?? '', process.argv[4] ?? '', Number(process.argv[5]));
} else {
  const accuracy = await runChildren();
  const ops = await throughput();
  const report = { when: new Date().toISOString(), node: process.version, accuracy, opsPerSec: ops };
  mkdirSync('bench/out', { recursive: true });
  writeFileSync('bench/out/state-bench.json', JSON.stringify(report, null, 2));
  console.log(JSON.stringify(report, null, 2));
}
