/**
 * Admin API input checks (memory state): what a tenant or key body, or a query, may say, and what
 * a client is told when it says something the gateway cannot use. Every refusal is a 400 in the
 * OpenAI error shape naming the field.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { StateInvalidInputError } from '../../src/state/errors.js';

const ADMIN = 'test-admin-token';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

async function admin(
  gw: TestGateway,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function assertInvalid(
  r: { status: number; body: Record<string, unknown> },
  param: string,
  re: RegExp,
): void {
  assert.equal(r.status, 400, JSON.stringify(r.body));
  const e = (r.body as unknown as ErrorBody).error;
  assert.equal(e.type, 'invalid_request_error');
  assert.equal(e.param, param);
  assert.match(e.message, re);
}

async function chat(gw: TestGateway, key: string, model: string): Promise<number> {
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('admin API input checks', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(
      demoConfig({
        models: {
          default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] },
          secret: { backends: [{ id: 'sim-secret', provider: 'sim', sim: { mode: 'echo' } }] },
        },
      }),
    );
  });
  after(() => gw.close());

  it('PATCH clears a policy field with null, and leaves the others (review, 2026-12-07: null was a 400)', async () => {
    const created = await admin(gw, 'POST', '/admin/tenants', {
      id: 'clearable',
      limits: { requests_per_second: 5 },
      quota: { daily_tokens: 1000 },
      max_tokens_cap: 64,
      default_model: 'default',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const r = await admin(gw, 'PATCH', '/admin/tenants/clearable', {
      quota: null,
      max_tokens_cap: null,
      default_model: null,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const v = (await admin(gw, 'GET', '/admin/tenants/clearable')).body;
    assert.deepEqual(
      [v.limits, v.quota, v.max_tokens_cap, v.default_model],
      [{ requests_per_second: 5 }, null, null, null],
    );
    // The runtime follows (the tenant is re-read after the change): no default model any more.
    const key = (await admin(gw, 'POST', '/admin/tenants/clearable/keys', {})).body.key as string;
    const res = await fetch(`${gw.url}/info`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(((await res.json()) as { default_model: unknown }).default_model, null);
  });

  it('allowed_models: an empty list is refused (it never means "every model"), unknown aliases too', async () => {
    const t = await admin(gw, 'POST', '/admin/tenants', { id: 'globex', allowed_models: ['default'] });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const key = (await admin(gw, 'POST', '/admin/tenants/globex/keys', {})).body.key as string;
    assert.equal(await chat(gw, key, 'secret'), 404);

    assertInvalid(
      await admin(gw, 'PATCH', '/admin/tenants/globex', { allowed_models: [] }),
      'allowed_models',
      /at least one model alias, or \["\*"\]/,
    );
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants', { id: 'initech', allowed_models: [] }),
      'allowed_models',
      /at least one/,
    );
    assertInvalid(
      await admin(gw, 'PATCH', '/admin/tenants/globex', { allowed_models: ['default', 'nope'] }),
      'allowed_models[1]',
      /unknown model alias "nope" \(defined: default, secret\)/,
    );
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants', { id: 'initech', default_model: 'nope' }),
      'default_model',
      /unknown model alias "nope"/,
    );
    assert.equal((await admin(gw, 'GET', '/admin/tenants/initech')).status, 404);
    // Nothing changed: still restricted.
    assert.deepEqual((await admin(gw, 'GET', '/admin/tenants/globex')).body.allowed_models, ['default']);
    assert.equal(await chat(gw, key, 'secret'), 404);
    assert.equal(await chat(gw, key, 'default'), 200);
    // "*" is how every model is given.
    assert.equal((await admin(gw, 'PATCH', '/admin/tenants/globex', { allowed_models: ['*'] })).status, 200);
    assert.equal(await chat(gw, key, 'secret'), 200);
  });

  it('a stored tenant with an empty allowed_models (older versions) may use no model, not every one', async () => {
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'legacy' })).status, 201);
    const key = (await admin(gw, 'POST', '/admin/tenants/legacy/keys', {})).body.key as string;
    assert.equal(await chat(gw, key, 'secret'), 200);
    // What an older version's PATCH {allowed_models: []} left in the store.
    const tenancy = gw.gateway.tenancy;
    assert.ok(tenancy);
    await tenancy.state.tenants.update('legacy', { allowed_models: [] });
    assert.equal(await chat(gw, key, 'secret'), 404);
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 404);
    const e = ((await res.json()) as ErrorBody).error;
    assert.equal(e.code, 'model_not_found');
    assert.match(e.message, /Your models: none\./);
  });
});

describe('rate limits', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(demoConfig());
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'globex' })).status, 201);
  });
  after(() => gw.close());

  it('limits outside their bounds are a 400 naming the field, for tenants and keys', async () => {
    assertInvalid(
      await admin(gw, 'PATCH', '/admin/tenants/globex', { limits: { requests_per_second: 1e308 } }),
      'limits.requests_per_second',
      /give at most 1000000 requests\/s/,
    );
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants', { id: 'tiny', limits: { requests_per_second: 1e-300 } }),
      'limits.requests_per_second',
      /give at least 0\.000001 requests\/s/,
    );
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants/globex/keys', {
        limits: { requests_per_second: 1, burst: 1e15 },
      }),
      'limits.burst',
      /at most 1000000000/,
    );
    assertInvalid(
      await admin(gw, 'PATCH', '/admin/tenants/globex', { limits: { tokens_per_minute: 1e15 } }),
      'limits.tokens_per_minute',
      /at most 1000000000000 tokens\/min/,
    );
    assert.equal((await admin(gw, 'GET', '/admin/tenants/globex')).body.limits, null);
    const ok = await admin(gw, 'PATCH', '/admin/tenants/globex', {
      limits: { requests_per_second: 1e6, burst: 1e9, tokens_per_minute: 1e12 },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('a record stored before the bounds keeps its whole policy (quota included)', async () => {
    const tenancy = gw.gateway.tenancy;
    assert.ok(tenancy);
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'legacy-limits' })).status, 201);
    await tenancy.state.tenants.update('legacy-limits', {
      limits: { limits: { requests_per_second: 1e308 }, quota: { daily_requests: 1 } },
    });
    const view = await admin(gw, 'GET', '/admin/tenants/legacy-limits');
    assert.deepEqual(view.body.limits, { requests_per_second: 1e308 });
    assert.deepEqual(view.body.quota, { daily_requests: 1 });
    const key = (await admin(gw, 'POST', '/admin/tenants/legacy-limits/keys', {})).body.key as string;
    assert.equal(await chat(gw, key, 'default'), 200);
    assert.equal(await chat(gw, key, 'default'), 429, 'the daily quota of 1 request still applies');
  });
});

describe('key expiry', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(demoConfig());
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'globex' })).status, 201);
  });
  after(() => gw.close());

  it('expires_at outside the years 1-9999 once its offset is applied is a 400, at the API and in the store', async () => {
    for (const expires_at of [
      '0000-01-01T00:00:00Z',
      '9999-12-31T23:59:59-14:00',
      '0001-01-01T00:00:00+00:01',
    ])
      assertInvalid(
        await admin(gw, 'POST', '/admin/tenants/globex/keys', { expires_at }),
        'expires_at',
        /expires_at: must fall in the years 0001-9999 once its offset is applied/,
      );
    // A date alone (or a time without an offset) says which format is needed.
    for (const expires_at of ['2027-01-01', '2027-01-01T00:00:00'])
      assertInvalid(
        await admin(gw, 'POST', '/admin/tenants/globex/keys', { expires_at }),
        'expires_at',
        /^expires_at: use an ISO 8601 time with seconds and Z or an offset, e\.g\. 2027-01-01T00:00:00Z$/,
      );
    // In range but past: a key that could never be used is refused too (review, 2026-12).
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants/globex/keys', { expires_at: '0001-01-01T00:00:00Z' }),
      'expires_at',
      /expires_at: is not in the future/,
    );
    for (const [expires_at, stored] of [
      ['9999-12-31T23:59:59Z', '9999-12-31T23:59:59.000Z'],
      ['9999-12-31T23:59:59+14:00', '9999-12-31T09:59:59.000Z'],
    ]) {
      const r = await admin(gw, 'POST', '/admin/tenants/globex/keys', { expires_at });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.expires_at, stored);
    }
    // The stores' own guard (for callers that skip the API): one typed error, a 400 at the edge.
    const tenancy = gw.gateway.tenancy;
    assert.ok(tenancy);
    await assert.rejects(
      tenancy.state.keys.create({ tenant_id: 'globex', label: '', expires_at: '+010000-01-01T00:00:00Z' }),
      (e: unknown) =>
        e instanceof StateInvalidInputError && /expires_at must be a time from 0001/.test(e.message),
    );
  });
});

describe('admin API input checks (embedded state)', () => {
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-admin-api-'));
    gw = await startTestGateway(demoConfig({ state: { kind: 'embedded', data_dir: join(dir, 'data') } }));
    assert.equal((await admin(gw, 'POST', '/admin/tenants', { id: 'globex' })).status, 201);
    assert.equal((await admin(gw, 'POST', '/admin/tenants/globex/keys', { label: 'k' })).status, 201);
  });
  after(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });

  const keyTenants = async (query: string): Promise<string[]> => {
    const r = await admin(gw, 'GET', `/admin/keys${query}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body.data as Array<{ tenant_id: string }>).map((k) => k.tenant_id).sort();
  };

  it('GET /admin/keys: one tenant, or every tenant when absent or empty; a repeated or bad tenant is a 400', async () => {
    assert.deepEqual(await keyTenants(''), ['acme-corp', 'closed-ai', 'globex']);
    assert.deepEqual(await keyTenants('?tenant='), ['acme-corp', 'closed-ai', 'globex']);
    assert.deepEqual(await keyTenants('?tenant=globex'), ['globex']);
    assert.deepEqual(await keyTenants('?tenant=acme-corp'), ['acme-corp']);
    assertInvalid(
      await admin(gw, 'GET', '/admin/keys?tenant=acme-corp&tenant=globex'),
      'tenant',
      /tenant: give this parameter once, with one value/,
    );
    assertInvalid(await admin(gw, 'GET', '/admin/keys?tenant=Not%20An%20Id'), 'tenant', /give a tenant id/);
    const unknown = await admin(gw, 'GET', '/admin/keys?tenants=globex');
    assert.equal(unknown.status, 400);
    assert.match((unknown.body as unknown as ErrorBody).error.message, /tenants/);
    assertInvalid(
      await admin(gw, 'GET', '/admin/usage?tenant=a&tenant=b'),
      'tenant',
      /tenant: give this parameter once/,
    );
  });

  it('an unknown field in a body is named in param and in the message, with the known fields', async () => {
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants', { id: 'initech', nmae: 'Initech' }),
      'nmae',
      /^nmae: unknown field \(known fields: id, display_name, .*\)$/,
    );
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants', { id: 'initech', limits: { rps: 3 } }),
      'limits.rps',
      /^limits\.rps: unknown field \(known fields: requests_per_second, burst, tokens_per_minute, max_in_flight\)$/,
    );
    assertInvalid(
      await admin(gw, 'POST', '/admin/tenants/globex/keys', { lable: 'x' }),
      'lable',
      /^lable: unknown field \(known fields: label, expires_at, limits, quota\)$/,
    );
  });
});
