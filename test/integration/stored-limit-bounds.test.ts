/**
 * Rate limits stored before the schema had bounds (the admin API took requests_per_second 1e308 or
 * 1e-300, burst 1e15, tokens_per_minute 9e15) are enforced at the bound, with one warning per
 * tenant (or key) naming the field and the stored value, and the x-ratelimit-* headers are plain
 * integers. Before, such a tenant's answers carried `x-ratelimit-limit: 1e+308`,
 * `x-ratelimit-reset: 1e+300`, `x-ratelimit-reset-requests: 1.6666666666666667e+298m...s` or a
 * 9000000000000000-token window. The limits are written into the store directly, past the admin
 * API's checks, in an embedded (SQLite) gateway and, where Postgres and Redis answer, a
 * distributed one (required with CI=true).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Gateway } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { buildHttpServer } from '../../src/http/server.js';
import { RATE_LIMIT_BOUNDS } from '../../src/config/schema.js';
import { demoConfig } from '../support/gateway.js';
import { dropTestState, reachablePostgres, redisUnreachable } from '../support/processes.js';

const ADMIN = 'test-admin-token';
const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const INT = /^\d+$/;
const DURATION = /^(\d+m)?\d+s$/;

interface Running {
  url: string;
  gateway: Gateway;
  warnings: Array<Record<string, unknown>>;
  close: () => Promise<void>;
}

/** A gateway on loopback whose warnings are kept (a pino logger writing into an array). */
async function start(state: Record<string, unknown>): Promise<Running> {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const loaded = await buildConfig(demoConfig({ state }), { env: {} });
  const gateway = await Gateway.create(loaded, { defaultMetrics: false, logger });
  const app = await buildHttpServer(gateway);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  gateway.markReady();
  return {
    url,
    gateway,
    warnings,
    close: async () => {
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
      await gateway.close();
    },
  };
}

async function admin(gw: Running, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** A tenant made through the admin API, then given `limits` (and a quota) straight in the store. */
async function legacyTenant(gw: Running, id: string, limits: Record<string, number>): Promise<string> {
  assert.equal((await admin(gw, 'POST', '/admin/tenants', { id })).status, 201);
  const tenancy = gw.gateway.tenancy;
  assert.ok(tenancy);
  await tenancy.state.tenants.update(id, { limits: { limits, quota: { daily_requests: 1000 } } });
  const res = await admin(gw, 'POST', `/admin/tenants/${id}/keys`, {});
  assert.equal(res.status, 201);
  return ((await res.json()) as { key: string }).key;
}

async function chat(gw: Running, key: string): Promise<Response> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.text();
  return res;
}

/** Every rate-limit header a plain integer (or an "XmYs" duration), at most `max`. */
function assertSaneHeaders(res: Response, max: number): void {
  let seen = 0;
  res.headers.forEach((value, name) => {
    if (!name.startsWith('x-ratelimit-') && !name.startsWith('retry-after')) return;
    seen++;
    if (name.startsWith('x-ratelimit-reset-')) assert.match(value, DURATION, `${name}: ${value}`);
    else {
      assert.match(value, INT, `${name}: ${value}`);
      assert.ok(Number(value) <= max, `${name}: ${value} > ${max}`);
    }
  });
  assert.ok(seen > 0, 'the response has rate-limit headers');
}

function clampWarnings(gw: Running, who: string): Array<Record<string, unknown>> {
  return gw.warnings.filter((w) => w['tenant'] === who || w['key'] === who);
}

interface Setup {
  state: Record<string, unknown>;
  cleanup: () => Promise<void>;
}

/** `setup` gives the state config, or why it cannot run here. */
function suite(name: string, setup: () => Promise<Setup | string>): void {
  describe(`stored limits outside their bounds (${name})`, () => {
    let gw: Running | undefined;
    let skip: string | undefined;
    let cleanup: (() => Promise<void>) | undefined;

    before(async () => {
      const s = await setup();
      if (typeof s === 'string') {
        if (process.env.CI === 'true') throw new Error(`CI=true but ${s}`);
        skip = s;
        console.warn(`SKIPPED ${name}: ${s}`);
        return;
      }
      cleanup = s.cleanup;
      gw = await start(s.state);
    });
    after(async () => {
      await gw?.close();
      await cleanup?.();
    });

    it('requests_per_second 1e308 and tokens_per_minute 9e15: enforced at the bounds', async (t) => {
      if (!gw) return t.skip(skip);
      const key = await legacyTenant(gw, 'legacy-huge', {
        requests_per_second: 1e308,
        tokens_per_minute: 9e15,
      });
      for (let i = 0; i < 3; i++) {
        const res = await chat(gw, key);
        assert.equal(res.status, 200);
        assertSaneHeaders(res, RATE_LIMIT_BOUNDS.tokens_per_minute);
        // The bucket's size defaults to the rate: 1e6 (the bound), not 1e+308.
        assert.equal(res.headers.get('x-ratelimit-limit-requests'), '1000000');
        assert.equal(res.headers.get('x-ratelimit-limit-tokens'), '1000000000000');
      }
      const warned = clampWarnings(gw, 'legacy-huge');
      assert.equal(warned.length, 1, JSON.stringify(gw.warnings));
      assert.match(String(warned[0]?.['msg']), /limits\.requests_per_second 1e\+308/);
      assert.match(String(warned[0]?.['msg']), /limits\.tokens_per_minute 9000000000000000/);
      // The stored record is left as it is (the admin API shows what is stored).
      const view = (await (await admin(gw, 'GET', '/admin/tenants/legacy-huge')).json()) as {
        limits: unknown;
        quota: unknown;
      };
      assert.deepEqual(view.limits, { requests_per_second: 1e308, tokens_per_minute: 9e15 });
      assert.deepEqual(view.quota, { daily_requests: 1000 });
    });

    it('requests_per_second 1e-300: reset headers in plain seconds, not 1e+300', async (t) => {
      if (!gw) return t.skip(skip);
      const key = await legacyTenant(gw, 'legacy-tiny', { requests_per_second: 1e-300, burst: 5 });
      const res = await chat(gw, key);
      assert.equal(res.status, 200);
      assertSaneHeaders(res, 1e6);
      assert.equal(res.headers.get('x-ratelimit-limit-requests'), '5');
      assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '4');
      // One request back at 0.000001/s: 1,000,000 s.
      assert.equal(res.headers.get('x-ratelimit-reset'), '1000000');
      assert.equal(res.headers.get('x-ratelimit-reset-requests'), '16666m40s');
      assert.equal(clampWarnings(gw, 'legacy-tiny').length, 1);
    });

    it("a key's burst 1e15: enforced at 1e9, one warning naming the key", async (t) => {
      if (!gw) return t.skip(skip);
      assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'legacy-key' })).status, 201);
      const tenancy = gw.gateway.tenancy;
      assert.ok(tenancy);
      const created = await tenancy.state.keys.create({
        tenant_id: 'legacy-key',
        limits: { limits: { requests_per_second: 1, burst: 1e15 } },
      });
      for (let i = 0; i < 2; i++) {
        const res = await chat(gw, created.plaintext);
        assert.equal(res.status, 200);
        assertSaneHeaders(res, RATE_LIMIT_BOUNDS.burst);
        assert.equal(res.headers.get('x-ratelimit-limit-requests'), '1000000000');
      }
      const warned = clampWarnings(gw, created.key.id);
      assert.equal(warned.length, 1, JSON.stringify(gw.warnings));
      assert.match(String(warned[0]?.['msg']), /limits\.burst 1000000000000000/);
    });
  });
}

suite('embedded, SQLite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portico-limit-bounds-'));
  return {
    state: { kind: 'embedded', data_dir: dir },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

suite('distributed, Postgres and Redis', async () => {
  const pg = await reachablePostgres();
  if ('reason' in pg) return pg.reason;
  const redis = await redisUnreachable(REDIS_URL);
  if (redis) return redis;
  const schema = `portico_limit_bounds_${randomBytes(4).toString('hex')}`;
  const prefix = `portico-test-limit-bounds-${randomBytes(4).toString('hex')}:`;
  return {
    state: {
      kind: 'distributed',
      redis: { url: REDIS_URL, key_prefix: prefix },
      postgres: { url: pg.url, schema },
    },
    cleanup: () => dropTestState(pg.url, [schema], REDIS_URL, [prefix]),
  };
});
