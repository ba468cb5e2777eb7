/**
 * A distributed gateway whose Postgres goes away and comes back, through a TCP proxy (the real
 * server keeps running): cut (connections closed, new ones refused), blackholed (nothing answers,
 * nothing closes: a partition), and its connections terminated by the server
 * (pg_terminate_backend). What operators see — portico_state_backend_up{store="postgres"}, /ready —
 * and what clients get: 503 state_unavailable within a bounded time, from the API and the admin
 * API alike, and the usage ledger complete once Postgres is back.
 * The figures in docs/state.md ("Postgres outages, measured") are this file's console output.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropTestState, reachablePostgres } from '../support/processes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { series } from '../support/metrics.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const ADMIN = 'test-admin-token';
const CONFIG_KEY = 'sk-test-pg-outage-config-key';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 50 ms; resolves to the ms it took, fails after `ms`. */
async function until(what: string, cond: () => Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}

describe('distributed: Postgres outages', () => {
  let pgUrl = '';
  let skip: string | undefined;
  const prefix = `portico-pgdown-${randomBytes(4).toString('hex')}:`;
  const schemas: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    const r = await reachablePostgres();
    if ('reason' in r) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${r.reason}`);
      skip = r.reason;
      return;
    }
    pgUrl = r.url;
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    if (pgUrl) await dropTestState(pgUrl, schemas, REDIS_URL, [prefix]);
  });

  /** A gateway whose Postgres is reached through a proxy (or directly, with an application name). */
  async function gateway(
    opts: { proxy?: boolean; app?: string; postgres?: Record<string, unknown> } = {},
  ): Promise<{
    gw: TestGateway;
    proxy: TcpProxy | undefined;
  }> {
    const schema = `portico_pgdown_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    const u = new URL(pgUrl);
    let proxy: TcpProxy | undefined;
    let url = opts.app ? `${pgUrl}?application_name=${opts.app}` : pgUrl;
    if (opts.proxy) {
      const p = await startTcpProxy(Number(u.port || 5432), u.hostname);
      proxy = p;
      cleanups.push(() => p.close());
      url = `postgres://${u.username}@127.0.0.1:${p.port}${u.pathname}`;
    }
    const dir = await mkdtemp(join(tmpdir(), 'pgdown-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const gw = await startTestGateway(
      demoConfig({
        state: {
          kind: 'distributed',
          redis: { url: REDIS_URL, key_prefix: prefix },
          postgres: { url, schema, ...opts.postgres },
          redis_failure_mode: 'fail_closed',
          journal_dir: dir,
        },
        tenants: [{ id: 'cfgt', api_keys: [{ value: CONFIG_KEY }] }],
      }),
    );
    cleanups.push(async () => {
      // Unblock a blackholed proxy first, or closing waits for the queries it holds.
      proxy?.resume();
      proxy?.restore();
      await gw.close();
    });
    return { gw, proxy };
  }

  const call = (gw: TestGateway, key: string): Promise<Response> =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
  const admin = (gw: TestGateway, method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${gw.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const newKey = async (gw: TestGateway, tenant: string): Promise<{ key: string; id: string }> => {
    const r = await admin(gw, 'POST', `/admin/tenants/${tenant}/keys`, {});
    assert.equal(r.status, 201);
    return (await r.json()) as { key: string; id: string };
  };
  const gauge = async (gw: TestGateway): Promise<number | undefined> =>
    (await series(gw, 'portico_state_backend_up'))['store="postgres"'];
  const ready = async (
    gw: TestGateway,
  ): Promise<{ status: number; body: { reason: string; state?: unknown } }> => {
    const r = await fetch(`${gw.url}/ready`, { headers: { authorization: `Bearer ${ADMIN}` } });
    return { status: r.status, body: (await r.json()) as { reason: string; state?: unknown } };
  };
  /** A 503 state_unavailable with a retry-after, as docs/errors.md says. */
  async function assertStateUnavailable(r: Response, what: string): Promise<void> {
    const text = await r.text();
    assert.equal(r.status, 503, `${what}: ${r.status} ${text.slice(0, 200)}`);
    assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'state_unavailable', what);
    assert.equal(r.headers.get('retry-after'), '1', what);
  }

  it('cut: clients and the admin API get 503 state_unavailable, the gauge and /ready follow, all recovers', async (t) => {
    if (skip) return t.skip(skip);
    const { gw, proxy } = await gateway({ proxy: true });
    assert.ok(proxy);
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'apit' })).status, 201);
    const cached = await newKey(gw, 'apit');
    const uncached = await newKey(gw, 'apit');
    assert.equal((await call(gw, cached.key)).status, 200);
    assert.equal(await gauge(gw), 1);

    proxy.cut();
    const t0 = Date.now();
    // Config keys are checked against the config snapshot: served, their usage buffered.
    for (let i = 0; i < 10; i++) assert.equal((await call(gw, CONFIG_KEY)).status, 200);
    let t1 = Date.now();
    await assertStateUnavailable(await call(gw, uncached.key), 'a key not cached yet');
    const lookupMs = Date.now() - t1;
    await assertStateUnavailable(await admin(gw, 'POST', `/admin/keys/${uncached.id}/revoke`, {}), 'revoke');
    await assertStateUnavailable(await admin(gw, 'GET', '/admin/tenants'), 'list tenants');
    await assertStateUnavailable(
      await admin(gw, 'POST', '/admin/tenants', { id: 'during' }),
      'create a tenant',
    );
    await assertStateUnavailable(await admin(gw, 'GET', '/admin/keys?tenant=apit'), 'list keys');
    await assertStateUnavailable(await admin(gw, 'GET', '/admin/usage?tenant=cfgt'), 'usage report');
    const gaugeDownMs =
      (await until('gauge 0', async () => (await gauge(gw)) === 0, 8000)) + (Date.now() - t0);
    const r = await ready(gw);
    assert.equal(r.status, 503);
    assert.equal(r.body.reason, 'state_unavailable');
    assert.deepEqual(r.body.state, { redis: true, postgres: false });
    // Unauthenticated probes learn the reason too.
    const plain = await fetch(`${gw.url}/ready`);
    assert.deepEqual(
      [plain.status, await plain.json()],
      [503, { ready: false, reason: 'state_unavailable' }],
    );

    proxy.restore();
    t1 = Date.now();
    const gaugeUpMs = await until('gauge back to 1', async () => (await gauge(gw)) === 1, 10_000);
    const readyMs = await until('/ready 200', async () => (await ready(gw)).status === 200, 10_000);
    assert.equal((await call(gw, uncached.key)).status, 200, 'the key not cached before works now');
    const w = gw.gateway.tenancy!.state.ledgerWriter;
    const ledgerMs = await until('ledger caught up', async () => w.stats().buffered === 0, 10_000);
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try {
      const schema = schemas[schemas.length - 1] as string;
      const rows = await c.query<{ n: number }>(`select count(*)::int n from "${schema}".ledger`);
      // 1 before the cut, 10 config-key requests during it, 1 after.
      assert.equal(rows.rows[0]?.n, 12);
    } finally {
      await c.end();
    }
    console.log(
      `postgres cut: uncached key 503 after ${lookupMs} ms; gauge 0 after ${gaugeDownMs} ms; ` +
        `restored: gauge 1 after ${gaugeUpMs} ms, /ready 200 after ${readyMs} ms, ledger caught up after ${ledgerMs} ms more`,
    );
  });

  it('an outage while the pool is idle and nothing queries Postgres is seen by the probe (cut, then blackholed)', async (t) => {
    if (skip) return t.skip(skip);
    const { gw, proxy } = await gateway({ proxy: true });
    assert.ok(proxy);
    // Read the tracker itself: a /metrics scrape queries Postgres (tenant budgets), which would
    // tell the gauge by itself; here only the 5 s probe does.
    const up = (): boolean | undefined => gw.gateway.tenancy!.state.health().postgres;
    // pg.Pool closes idle clients after 10 s: the old code then had no connection left to report an error.
    await sleep(11_000);
    assert.equal(up(), true);
    // Redis's probe PINGs both its connections, the pub/sub one in subscriber mode included.
    assert.equal(gw.gateway.tenancy!.state.health().redis, true);
    proxy.cut();
    const cutDownMs = await until('down after a cut, no traffic', async () => up() === false, 8000);
    assert.equal((await ready(gw)).body.reason, 'state_unavailable');
    assert.equal(await gauge(gw), 0);
    proxy.restore();
    const cutUpMs = await until('up after the cut, no traffic', async () => up() === true, 8000);
    assert.equal((await ready(gw)).status, 200);
    await sleep(500);
    proxy.pause();
    const holeDownMs = await until('down in a blackhole, no traffic', async () => up() === false, 8000);
    assert.equal((await ready(gw)).status, 503);
    proxy.resume();
    const holeUpMs = await until('up after the blackhole, no traffic', async () => up() === true, 8000);
    assert.equal(await gauge(gw), 1);
    console.log(
      `postgres, no traffic: cut seen after ${cutDownMs} ms, recovery after ${cutUpMs} ms; ` +
        `blackhole seen after ${holeDownMs} ms, recovery after ${holeUpMs} ms`,
    );
  });

  it('connections terminated by the server: the gauge stays 1, requests are served', async (t) => {
    if (skip) return t.skip(skip);
    const app = `pgdown_${randomBytes(4).toString('hex')}`;
    const { gw } = await gateway({ app });
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'apit' })).status, 201);
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) keys.push((await newKey(gw, 'apit')).key);
    await sleep(300);
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try {
      const killed = await c.query<{ n: number }>(
        `select count(*) filter (where pg_terminate_backend(pid))::int n from pg_stat_activity where application_name = $1`,
        [app],
      );
      assert.ok((killed.rows[0]?.n ?? 0) > 0, 'terminated the gateway connections');
    } finally {
      await c.end();
    }
    // Let the idle pooled clients receive their termination (the pool's 'error' event).
    await sleep(200);
    const samples: number[] = [];
    const sampling = (async () => {
      for (let i = 0; i < 30; i++) {
        samples.push((await gauge(gw)) ?? -1);
        await sleep(50);
      }
    })();
    for (const k of keys) assert.equal((await call(gw, k)).status, 200);
    await sampling;
    assert.equal(await gauge(gw), 1);
    assert.ok(!samples.includes(0), `the gauge never read 0: ${samples.join(',')}`);
  });

  it('blackholed (nothing answers, nothing closes): 503 within the query timeout, /ready follows, the ledger recovers', async (t) => {
    if (skip) return t.skip(skip);
    const { gw, proxy } = await gateway({ proxy: true });
    assert.ok(proxy);
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'apit' })).status, 201);
    const keys: string[] = [];
    for (let i = 0; i < 15; i++) keys.push((await newKey(gw, 'apit')).key);
    // Open a few pooled connections (they will be held by the blackhole, not closed).
    await Promise.all(keys.slice(0, 3).map((k) => call(gw, k)));
    await sleep(300);

    proxy.pause();
    const t0 = Date.now();
    // Usage of a config key: served, its ledger flush is stuck in the blackhole.
    assert.equal((await call(gw, CONFIG_KEY)).status, 200);
    // More uncached lookups at once than the pool has connections (10).
    const answers = await Promise.all(
      keys.slice(3).map(async (k) => {
        const s = Date.now();
        const r = await call(gw, k);
        return { r, ms: Date.now() - s };
      }),
    );
    for (const a of answers) await assertStateUnavailable(a.r, 'an uncached key in a blackhole');
    const worst = Math.max(...answers.map((a) => a.ms));
    // query_timeout_ms (5 s) for those given a pooled connection; the connect timeout (5 s) for
    // those that must open one; both at most for those queued for a free one.
    assert.ok(worst < 11_000, `every lookup answered within 11 s (worst ${worst} ms)`);
    const readyDownMs =
      (await until('/ready 503', async () => (await ready(gw)).status === 503, 10_000)) + (Date.now() - t0);
    assert.equal(await gauge(gw), 0);

    proxy.resume();
    const t1 = Date.now();
    const upMs = await until('gauge back to 1', async () => (await gauge(gw)) === 1, 10_000);
    const readyUpMs = await until('/ready 200', async () => (await ready(gw)).status === 200, 10_000);
    const w = gw.gateway.tenancy!.state.ledgerWriter;
    await until('ledger caught up', async () => w.stats().buffered === 0, 10_000);
    const ledgerMs = Date.now() - t1;
    assert.equal((await call(gw, keys[5] as string)).status, 200);
    console.log(
      `postgres blackholed: uncached keys 503 after ${Math.min(...answers.map((a) => a.ms))}-${worst} ms ` +
        `(${answers.length} at once), /ready 503 after ${readyDownMs} ms; resumed: gauge 1 after ${upMs} ms, ` +
        `/ready 200 after ${readyUpMs} ms, stuck ledger flush written after ${ledgerMs} ms`,
    );
  });
});
