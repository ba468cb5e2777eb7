/**
 * Distributed state (Postgres ledger, Redis quota counters): a daily quota PATCHed mid-day counts
 * the requests the tenant made before it, and the admin view of a tenant without a quota reads
 * the ledger (review, 2026-12; the embedded case: test/integration/quota-seeding.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useDistributedGateway } from '../support/distributed.js';
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };

describe('distributed: a quota added mid-day counts the day so far', () => {
  const d = useDistributedGateway('seed');

  it('PATCH of a daily quota after three requests refuses the next one', async (t) => {
    const gw = d.gw;
    if (d.skip || !gw) return t.skip(d.skip);
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
