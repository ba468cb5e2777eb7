/**
 * Two replicas whose config files differ for a while (a rolling config change, a rollback, an old
 * pod restarting) share one Postgres schema. Review 2026-12: the replica with the older file
 * starting deleted the config tenant the newer file added, and with it (ON DELETE CASCADE) the API
 * keys created for it through the admin API: the key got 401 on the new replica, and its
 * GET /admin/tenants/newco/keys a 404. A config sync now never deletes a tenant that has API keys
 * (docs/tenancy.md, "Replicas with different configs").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropTestState, reachablePostgres } from '../support/processes.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = 'test-admin-token';

describe('config skew between replicas', () => {
  let pgUrl = '';
  const schema = `portico_skew_${randomBytes(4).toString('hex')}`;
  const prefix = `portico-skew-${randomBytes(4).toString('hex')}:`;
  const gws: TestGateway[] = [];
  const dirs: string[] = [];
  before(async () => {
    const r = await reachablePostgres();
    if ('reason' in r) throw new Error(r.reason);
    pgUrl = r.url;
  });
  after(async () => {
    for (const g of gws) await g.close();
    await dropTestState(pgUrl, [schema], REDIS_URL, [prefix]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const start = async (tenants: unknown[]): Promise<TestGateway> => {
    const d = await mkdtemp(join(tmpdir(), 'portico-skew-'));
    dirs.push(d);
    const g = await startTestGateway(
      demoConfig({
        state: {
          kind: 'distributed',
          redis: { url: REDIS_URL, key_prefix: prefix },
          postgres: { url: pgUrl, schema },
          redis_failure_mode: 'fail_closed',
          journal_dir: d,
        },
        tenants,
      }),
    );
    gws.push(g);
    return g;
  };
  const admin = (g: TestGateway, method: string, path: string, body?: unknown) =>
    fetch(`${g.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const call = (g: TestGateway, key: string) =>
    fetch(`${g.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
  const retained = async (g: TestGateway): Promise<number | undefined> =>
    (await g.gateway.metrics.configTenantsRetained.get()).values[0]?.value;

  it('an older replica starting keeps the newer config tenant and its API keys; a replica declaring it serves them', async () => {
    const a = await start([{ id: 'old' }, { id: 'newco' }]); // the new config
    const created = await admin(a, 'POST', '/admin/tenants/newco/keys', { label: 'ci' });
    assert.equal(created.status, 201);
    const { key, id: keyId } = (await created.json()) as { key: string; id: string };
    assert.equal((await call(a, key)).status, 200);

    const b = await start([{ id: 'old' }]); // a replica still on the old config (re)starts
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await call(a, key)).status, 200, 'the key of config tenant newco still works on A');
    const list = await admin(a, 'GET', '/admin/tenants/newco/keys');
    assert.equal(list.status, 200);
    assert.deepEqual(
      ((await list.json()) as { data: Array<{ id: string }> }).data.map((k) => k.id),
      [keyId],
    );
    // B does not declare newco: it refuses the key, saying why, and counts the tenant it kept.
    const onB = await call(b, key);
    assert.equal(onB.status, 401);
    assert.match(
      ((await onB.json()) as { error: { message: string } }).error.message,
      /config does not declare/,
    );
    assert.equal(await retained(b), 1);
    assert.equal(await retained(a), 0);
    // PATCH stays refused on both (a config tenant); DELETE is refused where it is declared.
    assert.equal((await admin(a, 'PATCH', '/admin/tenants/newco', { display_name: 'x' })).status, 403);
    assert.equal((await admin(b, 'PATCH', '/admin/tenants/newco', { display_name: 'x' })).status, 403);
    assert.equal((await admin(a, 'DELETE', '/admin/tenants/newco')).status, 403);

    // A third replica on the new config (A restarted, or the rollout going on): newco is a config
    // tenant as before, the key intact.
    const c = await start([{ id: 'old' }, { id: 'newco' }]);
    assert.equal((await call(c, key)).status, 200);
    assert.equal(await retained(c), 0);
    const rec = (await (await admin(c, 'GET', '/admin/tenants/newco')).json()) as { source: string };
    assert.equal(rec.source, 'config');
  });

  it('a config tenant without keys removed by another replica is put back by the replica that declares it', async () => {
    const a = await start([{ id: 'old' }, { id: 'bare' }]);
    await start([{ id: 'old' }]); // removes bare: no API keys
    await new Promise((r) => setTimeout(r, 300));
    // A's own config tenant is never a 404 on A: reads and key creation restore it.
    const list = await admin(a, 'GET', '/admin/tenants/bare/keys');
    assert.equal(list.status, 200, await list.clone().text());
    const d = await start([{ id: 'old' }]); // removes it again
    await new Promise((r) => setTimeout(r, 300));
    const created = await admin(a, 'POST', '/admin/tenants/bare/keys', {});
    assert.equal(created.status, 201, await created.clone().text());
    const { key } = (await created.json()) as { key: string };
    assert.equal((await call(a, key)).status, 200);
    // Removed from every config for good: the replica that does not declare it deletes it
    // (keys included) on the operator's request.
    assert.equal((await admin(d, 'DELETE', '/admin/tenants/bare')).status, 204);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await call(a, key)).status, 401);
  });
});
