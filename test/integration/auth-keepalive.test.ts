/**
 * authenticate.ts remembers the last key's digest per client connection (ctx.keyMemo), so a
 * keep-alive client hashes its key once. Everything below runs over ONE connection (an undici
 * Client with a single socket) to show the memo never answers for another key: keys alternate, a
 * wrong key between two good ones is refused, and a key revoked while the connection stays open is
 * refused on its next request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { ACME_KEY, CLOSED_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

describe('authentication on one keep-alive connection', () => {
  let gw: TestGateway;
  let client: Client;
  /** The client ports the /info requests came from: one port, one connection. */
  const infoPorts = new Set<number | undefined>();
  before(async () => {
    gw = await startTestGateway(demoConfig());
    gw.app.server.on('request', (req: { url?: string; socket: { remotePort?: number } }) => {
      if (req.url === '/info') infoPorts.add(req.socket.remotePort);
    });
    client = new Client(gw.url, { pipelining: 1 });
  });
  after(async () => {
    await client.close();
    await gw.close();
  });

  const info = async (key: string): Promise<{ status: number; tenant?: string; code?: string }> => {
    const r = await client.request({
      method: 'GET',
      path: '/info',
      headers: { authorization: `Bearer ${key}` },
    });
    const body = (await r.body.json()) as { tenant?: string; error?: { code: string } };
    return {
      status: r.statusCode,
      ...(body.tenant ? { tenant: body.tenant } : {}),
      ...(body.error ? { code: body.error.code } : {}),
    };
  };

  it('alternating keys each get their own tenant; a wrong key in between is refused', async () => {
    assert.deepEqual(await info(ACME_KEY), { status: 200, tenant: 'acme-corp' });
    assert.deepEqual(await info(ACME_KEY), { status: 200, tenant: 'acme-corp' });
    assert.deepEqual(await info(CLOSED_KEY), { status: 200, tenant: 'closed-ai' });
    assert.deepEqual(await info(`${ACME_KEY}x`), { status: 401, code: 'invalid_api_key' });
    assert.deepEqual(await info(ACME_KEY), { status: 200, tenant: 'acme-corp' });
    assert.deepEqual(await info(CLOSED_KEY), { status: 200, tenant: 'closed-ai' });
    assert.equal(infoPorts.size, 1, 'all on one connection');
  });

  it('a key revoked while its connection stays open is refused on the next request', async () => {
    const admin = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
    const created = await fetch(`${gw.url}/admin/tenants/acme-corp/keys`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ label: 'keep-alive test' }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { key, id } = (await created.json()) as { key: string; id: string };
    assert.deepEqual(await info(key), { status: 200, tenant: 'acme-corp' });
    assert.deepEqual(await info(key), { status: 200, tenant: 'acme-corp' });
    const revoked = await fetch(`${gw.url}/admin/keys/${id}/revoke`, { method: 'POST', headers: admin });
    assert.equal(revoked.status, 200);
    assert.deepEqual(await info(key), { status: 401, code: 'invalid_api_key' });
    assert.deepEqual(await info(ACME_KEY), { status: 200, tenant: 'acme-corp' });
    assert.equal(infoPorts.size, 1, 'still the one connection');
  });
});
