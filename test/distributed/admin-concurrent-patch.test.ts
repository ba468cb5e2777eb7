/**
 * Two admin PATCHes of one tenant at once, each setting a different policy key (a rate limit, a
 * quota), both land on a Postgres store (review, 2026-12-07: the route built the whole `limits`
 * object from a read before the store's transaction, so the later commit erased the other's
 * change — 19 of 20 tenants lost one).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useDistributedGateway } from '../support/distributed.js';
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };

describe('distributed: concurrent admin PATCHes of one tenant', () => {
  const d = useDistributedGateway('patch');

  it('both policy changes land, for every tenant', async (t) => {
    const gw = d.gw;
    if (d.skip || !gw) return t.skip(d.skip);
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
