/**
 * Two admin PATCHes of one tenant at once, each setting a different policy key (a rate limit, a
 * quota), both land on a Postgres store (review, 2026-12-07: the route built the whole `limits`
 * object from a read before the store's transaction, so the later commit erased the other's
 * change — 19 of 20 tenants lost one).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropTestState, reachablePostgres, redisUnreachable } from '../support/processes.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };

describe('distributed: concurrent admin PATCHes of one tenant', () => {
  let skip: string | undefined;
  let pgUrl = '';
  let gw: TestGateway | undefined;
  const schema = `portico_patch_${randomBytes(4).toString('hex')}`;
  const prefix = `portico-patch-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    const pg = await reachablePostgres();
    if ('reason' in pg) skip = pg.reason;
    else {
      pgUrl = pg.url;
      skip = await redisUnreachable(REDIS_URL);
    }
    if (skip) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${skip}`);
      console.warn(`SKIPPED concurrent PATCH test: ${skip}`);
      return;
    }
    gw = await startTestGateway(
      demoConfig({
        state: {
          kind: 'distributed',
          redis: { url: REDIS_URL, key_prefix: prefix },
          postgres: { url: pgUrl, schema },
          redis_failure_mode: 'fail_closed',
        },
      }),
    );
  });
  after(async () => {
    await gw?.close();
    if (!skip) await dropTestState(pgUrl, [schema]);
  });

  it('both policy changes land, for every tenant', async (t) => {
    if (skip || !gw) return t.skip(skip);
    const base = gw.url;
    const ids = Array.from({ length: 20 }, (_, i) => `patched-${i}`);
    for (const id of ids) {
      const r = await fetch(`${base}/admin/tenants`, {
        method: 'POST',
        headers: ADMIN,
        body: JSON.stringify({ id }),
      });
      assert.equal(r.status, 201);
    }
    const patch = (id: string, body: unknown): Promise<Response> =>
      fetch(`${base}/admin/tenants/${id}`, { method: 'PATCH', headers: ADMIN, body: JSON.stringify(body) });
    await Promise.all(
      ids.flatMap((id) => [
        patch(id, { limits: { requests_per_second: 5 } }),
        patch(id, { quota: { daily_tokens: 1000 } }),
      ]),
    );
    const lost: string[] = [];
    for (const id of ids) {
      const v = (await (await fetch(`${base}/admin/tenants/${id}`, { headers: ADMIN })).json()) as {
        limits: unknown;
        quota: unknown;
      };
      if (v.limits === null || v.quota === null) lost.push(`${id}: ${JSON.stringify(v)}`);
    }
    assert.deepEqual(lost, []);
  });
});
