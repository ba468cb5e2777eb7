/**
 * Distributed state (Postgres ledger, Redis quota counters): a daily quota PATCHed mid-day counts
 * the requests the tenant made before it, and the admin view of a tenant without a quota reads
 * the ledger (review, 2026-12; the embedded case: test/integration/quota-seeding.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropTestState, reachablePostgres, redisUnreachable } from '../support/processes.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };

describe('distributed: a quota added mid-day counts the day so far', () => {
  let skip: string | undefined;
  let pgUrl = '';
  let gw: TestGateway | undefined;
  const schema = `portico_seed_${randomBytes(4).toString('hex')}`;
  const prefix = `portico-seed-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    const pg = await reachablePostgres();
    if ('reason' in pg) skip = pg.reason;
    else {
      pgUrl = pg.url;
      skip = await redisUnreachable(REDIS_URL);
    }
    if (skip) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${skip}`);
      console.warn(`SKIPPED quota seeding test: ${skip}`);
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

  it('PATCH of a daily quota after three requests refuses the next one', async (t) => {
    if (skip || !gw) return t.skip(skip);
    const base = gw.url;
    assert.equal(
      (
        await fetch(`${base}/admin/tenants`, {
          method: 'POST',
          headers: ADMIN,
          body: JSON.stringify({ id: 'midday' }),
        })
      ).status,
      201,
    );
    const { key } = (await (
      await fetch(`${base}/admin/tenants/midday/keys`, { method: 'POST', headers: ADMIN, body: '{}' })
    ).json()) as { key: string };
    const chat = async (): Promise<number> => {
      const r = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await r.text();
      return r.status;
    };
    assert.deepEqual([await chat(), await chat(), await chat()], [200, 200, 200]);
    const view = async (): Promise<{ usedRequests: number; source: string }> =>
      (
        (await (await fetch(`${base}/admin/tenants/midday`, { headers: ADMIN })).json()) as {
          usage: { day: { usedRequests: number; source: string } };
        }
      ).usage.day;
    assert.deepEqual(await view(), { ...(await view()), usedRequests: 3, source: 'ledger' });
    const p = await fetch(`${base}/admin/tenants/midday`, {
      method: 'PATCH',
      headers: ADMIN,
      body: JSON.stringify({ quota: { daily_requests: 4 } }),
    });
    assert.equal(p.status, 200);
    assert.deepEqual([await chat(), await chat()], [200, 429]);
    const after = await view();
    assert.equal(after.source, 'quota');
    assert.equal(after.usedRequests, 4);
  });
});
