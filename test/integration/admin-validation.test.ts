/**
 * Admin API input checks (review, 2026-12): a key that expires in the past, duplicate
 * allowed_models, unknown tenants in the keys and usage filters, usage ranges that hold nothing or
 * end in 9999, ISO times that roll over; and the console's answer to a path that climbs out of it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { toPorticoError } from '../../src/http/errors.js';
import { registerConsoleFiles } from '../../src/http/routes/console.js';
import { PorticoError } from '../../src/errors/portico-error.js';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const H = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
type ErrorBody = { error: { code: string; param: string | null; message: string } };

describe('admin API input checks', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(demoConfig());
    await gw.gateway.tenancy!.state.ledger.append([
      {
        id: 'r-old-tenant',
        time: Date.parse('2026-03-01T12:00:00Z'),
        tenant: 'long-gone',
        key_id: null,
        model: 'default',
        backend: null,
        tokens_in: 1,
        tokens_out: 1,
        estimated: false,
        cost_usd: 0,
        latency_ms: 1,
        status: 200,
        cache_hit: false,
        request_id: 'r-old-tenant',
      },
    ]);
  });
  after(() => gw.close());
  const get = async (p: string): Promise<{ status: number; body: ErrorBody & { data: unknown[] } }> => {
    const r = await fetch(`${gw.url}${p}`, { headers: H });
    return { status: r.status, body: (await r.json()) as ErrorBody & { data: unknown[] } };
  };
  const post = async (
    p: string,
    body: unknown,
    method = 'POST',
  ): Promise<{ status: number; body: ErrorBody }> => {
    const r = await fetch(`${gw.url}${p}`, { method, headers: H, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as ErrorBody };
  };

  it('usage: dates that do not exist are 400s, not rolled over', async () => {
    for (const v of ['2026-02-30T00:00:00Z', '2026-02-30', '2026-01-01T24:00:00Z']) {
      const r = await get(`/admin/usage?from=${encodeURIComponent(v)}`);
      assert.equal(r.status, 400, v);
      assert.equal(r.body.error.param, 'from');
    }
  });

  it('usage: a to day or month in 9999 is usable', async () => {
    for (const v of ['9999-12-31', '9999-12']) {
      const r = await get(`/admin/usage?to=${v}`);
      assert.equal(r.status, 200, `${v}: ${JSON.stringify(r.body)}`);
    }
  });

  it('usage: from after to is a 400 naming both', async () => {
    const r = await get('/admin/usage?from=2026-12&to=2026-01');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_request');
    assert.match(r.body.error.message, /from="2026-12" is not before to="2026-01"/);
  });

  it('usage and keys: an unknown tenant is a 404; a deleted one with ledger rows keeps its usage', async () => {
    const usage = await get('/admin/usage?tenant=nope');
    assert.equal(usage.status, 404);
    assert.equal(usage.body.error.code, 'not_found');
    assert.equal(usage.body.error.param, 'tenant');
    const keys = await get('/admin/keys?tenant=nope');
    assert.equal(keys.status, 404);
    assert.equal(keys.body.error.param, 'tenant');
    assert.equal((await get('/admin/keys?tenant=acme-corp')).status, 200);
    assert.equal((await get('/admin/keys?tenant=')).status, 200, 'empty: every tenant');
    assert.equal((await get('/admin/usage?tenant=acme-corp')).status, 200);
    const gone = await get('/admin/usage?tenant=long-gone');
    assert.equal(gone.status, 200);
    assert.equal(gone.body.data.length, 1);
  });

  it('keys: an expires_at that is not in the future is a 400 on expires_at', async () => {
    const past = await post('/admin/tenants/acme-corp/keys', { expires_at: '2000-01-01T00:00:00Z' });
    assert.equal(past.status, 400);
    assert.equal(past.body.error.param, 'expires_at');
    assert.match(past.body.error.message, /not in the future/);
    const future = await post('/admin/tenants/acme-corp/keys', { expires_at: '2999-01-01T00:00:00Z' });
    assert.equal(future.status, 201);
  });

  it('tenants: a model alias listed twice in allowed_models is a 400 naming the second', async () => {
    const r = await post('/admin/tenants', { id: 'dupm', allowed_models: ['default', 'default', '*'] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'allowed_models[1]');
    assert.match(r.body.error.message, /"default" is listed twice \(also at allowed_models\[0\]\)/);
    assert.equal((await post('/admin/tenants', { id: 'dupm', allowed_models: ['default'] })).status, 201);
    const patch = await post('/admin/tenants/dupm', { allowed_models: ['*', 'default', '*'] }, 'PATCH');
    assert.equal(patch.status, 400);
    assert.equal(patch.body.error.param, 'allowed_models[2]');
  });
});

describe('console files', () => {
  let root: string;
  const app = Fastify();
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'portico-console-'));
    await writeFile(join(root, 'index.html'), '<!doctype html><title>console</title>');
    // As the gateway's server: one error handler and one not-found handler, both OpenAI-shaped.
    app.setErrorHandler((err, _request, reply) => {
      const pe = toPorticoError(err);
      void reply.code(pe.status).send(pe.toBody());
    });
    app.setNotFoundHandler((request, reply) => {
      const pe = new PorticoError('not_found', `No endpoint ${request.method} ${request.url}.`);
      void reply.code(pe.status).send(pe.toBody());
    });
    await registerConsoleFiles(app, root);
    await app.ready();
  });
  after(async () => {
    await app.close();
    await rm(root, { recursive: true, force: true });
  });

  it('a path that climbs out of the console is a 404 not_found, like any other miss', async () => {
    assert.equal((await app.inject('/console/index.html')).statusCode, 200);
    for (const url of [
      '/console/..%5c..%5cpackage.json',
      '/console/%2e%2e/%2e%2e/package.json',
      '/console/..%2f..%2fpackage.json',
      '/console/a/..%5c..%5c..%5cetc/passwd',
      '/console/missing.js',
    ]) {
      const r = await app.inject(url);
      assert.equal(r.statusCode, 404, `${url}: ${r.body}`);
      const body = r.json<ErrorBody>();
      assert.equal(body.error.code, 'not_found', url);
      assert.notEqual(body.error.message, 'Forbidden', url);
    }
  });
});
