/**
 * A quota counts the day's usage so far, whenever it is added (review, 2026-12): quota counters
 * run only while a quota is set, so a daily quota PATCHed mid-day started from zero and the tenant
 * got a whole quota on top of the day's traffic; GET /admin/tenants/{id} showed `usedRequests: 0`
 * for a tenant without a quota although the ledger had its requests. Now a scope that gains a
 * quota (admin POST/PATCH, a config reload, a start) is seeded from the ledger, and the admin view
 * of a tenant without a quota reads the ledger (`source: "ledger"`). Embedded store.
 *
 * Also the documented rule for a deleted tenant (docs/admin-api.md): a tenant re-created with the
 * id of a deleted one keeps its quota usage and ledger rows — delete and re-create cannot dodge a
 * quota.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ACME_KEY, demoConfig, startGatewayFromFile } from '../support/gateway.js';

const H = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
interface WindowView {
  usedTokens: number;
  usedRequests: number;
  limitRequests: number | null;
  source: string;
}
interface TenantView {
  usage: { day: WindowView; month: WindowView };
}

describe('a new quota counts the usage so far', () => {
  let gw: Awaited<ReturnType<typeof startGatewayFromFile>>;
  let cfg: Record<string, unknown>;
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'portico-seed-'));
    cfg = demoConfig({ state: { kind: 'embedded', data_dir: dataDir } });
    gw = await startGatewayFromFile(cfg);
  });
  after(async () => {
    await gw.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  const admin = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const r = await fetch(`${gw.url}${path}`, {
      method,
      headers: body === undefined ? { authorization: H.authorization } : H,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const chat = async (key: string): Promise<number> => {
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await r.text();
    return r.status;
  };
  const newTenant = async (id: string, extra: Record<string, unknown> = {}): Promise<string> => {
    assert.equal((await admin('POST', '/admin/tenants', { id, ...extra })).status, 201);
    return (await admin<{ key: string }>('POST', `/admin/tenants/${id}/keys`, {})).body.key;
  };

  it('PATCH of a daily quota mid-day counts the requests and tokens made before it', async () => {
    const key = await newTenant('midday');
    assert.deepEqual([await chat(key), await chat(key), await chat(key)], [200, 200, 200]);
    const before = (await admin<TenantView>('GET', '/admin/tenants/midday')).body.usage;
    assert.equal(before.day.source, 'ledger', 'no quota: the figures are the ledger’s');
    assert.equal(before.day.usedRequests, 3);
    assert.equal(before.month.usedRequests, 3);
    assert.ok(before.day.usedTokens > 0);
    assert.equal(before.day.limitRequests, null);

    assert.equal(
      (await admin('PATCH', '/admin/tenants/midday', { quota: { daily_requests: 2 } })).status,
      200,
    );
    assert.equal(await chat(key), 429, 'three requests made today; a daily quota of 2 refuses');
    const afterPatch = (await admin<TenantView>('GET', '/admin/tenants/midday')).body.usage;
    assert.equal(afterPatch.day.source, 'quota');
    assert.equal(afterPatch.day.usedRequests, 3);
    assert.equal(afterPatch.day.usedTokens, before.day.usedTokens);
    assert.equal(afterPatch.day.limitRequests, 2);

    // Raised to 5: two more fit; PATCHing it again seeds nothing twice.
    assert.equal(
      (await admin('PATCH', '/admin/tenants/midday', { quota: { daily_requests: 5 } })).status,
      200,
    );
    assert.deepEqual([await chat(key), await chat(key), await chat(key)], [200, 200, 429]);
    assert.equal((await admin<TenantView>('GET', '/admin/tenants/midday')).body.usage.day.usedRequests, 5);
  });

  it('a quota removed and set again counts what was used while it was off', async () => {
    const key = await newTenant('onoff', { quota: { daily_requests: 4 } });
    assert.equal(await chat(key), 200);
    assert.equal((await admin('PATCH', '/admin/tenants/onoff', { quota: null })).status, 200);
    assert.deepEqual([await chat(key), await chat(key)], [200, 200]);
    assert.equal(
      (await admin('PATCH', '/admin/tenants/onoff', { quota: { daily_requests: 4 } })).status,
      200,
    );
    assert.deepEqual([await chat(key), await chat(key)], [200, 429]);
  });

  it('a config reload that adds a quota to a tenant or a key counts the usage so far', async () => {
    assert.deepEqual([await chat(ACME_KEY), await chat(ACME_KEY)], [200, 200]);
    const tenants = structuredClone(cfg.tenants) as Array<Record<string, unknown>>;
    tenants[0] = { ...tenants[0], quota: { daily_requests: 2 } };
    await writeFile(gw.file, stringify({ ...cfg, tenants }));
    assert.equal(await gw.watcher?.reload(), true);
    assert.equal(await chat(ACME_KEY), 429, 'acme-corp made 2 requests today before its quota');

    // A key's own quota: closed-ai's key made 1 request, then gets a key quota of 1.
    assert.equal(await chat('sk-test-closed-ai'), 200);
    const withKeyQuota = structuredClone(tenants);
    const closed = withKeyQuota[1] as { api_keys: Array<Record<string, unknown>> };
    closed.api_keys = [{ ...closed.api_keys[0], quota: { daily_requests: 1 } }];
    await writeFile(gw.file, stringify({ ...cfg, tenants: withKeyQuota }));
    assert.equal(await gw.watcher?.reload(), true);
    assert.equal(await chat('sk-test-closed-ai'), 429, 'the key made its 1 request today');
  });

  it('a start with a quota the last run did not have counts the usage so far', async () => {
    const key = await newTenant('restart');
    assert.deepEqual([await chat(key), await chat(key)], [200, 200]);
    await gw.cleanup();
    const tenants = structuredClone(cfg.tenants) as Array<Record<string, unknown>>;
    tenants[1] = { ...tenants[1], quota: { daily_requests: 1 } };
    // closed-ai made 1 request in the last test (its key quota is gone with this file).
    gw = await startGatewayFromFile({ ...cfg, tenants });
    assert.equal(await chat('sk-test-closed-ai'), 429);
    assert.equal(await chat(key), 200, 'an API tenant without a quota is not limited');
  });

  it('delete and re-create: the new tenant keeps the old one’s ledger rows and quota usage', async () => {
    const k1 = await newTenant('recyc', { quota: { daily_requests: 2 } });
    assert.deepEqual([await chat(k1), await chat(k1)], [200, 200]);
    assert.equal((await admin('DELETE', '/admin/tenants/recyc')).status, 204);
    assert.equal(await chat(k1), 401, 'its keys went with it');
    // Its usage is still queryable, and a tenant made with its id starts where it left off.
    const usage = await admin<{ data: Array<{ requests: number }> }>('GET', '/admin/usage?tenant=recyc');
    assert.equal(usage.status, 200);
    assert.equal(usage.body.data[0]?.requests, 2);
    const k2 = await newTenant('recyc', { quota: { daily_requests: 2 } });
    assert.equal(await chat(k2), 429);
    assert.equal((await admin<TenantView>('GET', '/admin/tenants/recyc')).body.usage.day.usedRequests, 2);
  });
});
