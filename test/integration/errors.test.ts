/**
 * Bad input never yields a 500: each case is a 4xx with the OpenAI error shape, the right code and
 * a message a person can act on. Also: security headers, 404/405, gzip for large responses only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

function assertErrorShape(body: unknown): asserts body is ErrorBody {
  const e = (body as ErrorBody).error;
  assert.ok(e, 'has error');
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 10, 'message says something');
  assert.equal(typeof e.type, 'string');
  assert.equal(typeof e.code, 'string');
  assert.ok(e.param === null || typeof e.param === 'string');
}

describe('errors at the edge', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(
      demoConfig({ server: { host: '127.0.0.1', port: 0, body_limit_bytes: 4096 } }),
    );
  });
  after(() => gw.close());

  const auth = { authorization: `Bearer ${ACME_KEY}` };
  const cases: Array<{
    name: string;
    path?: string;
    method?: 'GET' | 'POST' | 'PUT';
    headers?: Record<string, string>;
    body?: string;
    status: number;
    code: string;
    param?: string;
    message?: RegExp;
  }> = [
    {
      name: 'malformed JSON',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model": "default", ',
      status: 400,
      code: 'invalid_json',
    },
    {
      name: 'JSON that is not an object',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '[1,2]',
      status: 400,
      code: 'invalid_request',
      param: 'body',
    },
    {
      name: 'empty body',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '',
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'missing messages',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"default"}',
      status: 400,
      code: 'invalid_request',
      param: 'messages',
    },
    {
      name: 'messages wrong type',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"default","messages":"hi"}',
      status: 400,
      code: 'invalid_request',
      param: 'messages',
    },
    {
      name: 'bad role',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"default","messages":[{"role":"boss","content":"x"}]}',
      status: 400,
      code: 'invalid_request',
      param: 'messages[0].role',
    },
    {
      name: 'max_tokens wrong type',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"default","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}',
      status: 400,
      code: 'invalid_request',
      param: 'max_tokens',
    },
    {
      name: 'stream wrong type',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"default","messages":[{"role":"user","content":"x"}],"stream":"yes"}',
      status: 400,
      code: 'invalid_request',
      param: 'stream',
    },
    {
      name: 'missing model',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"messages":[{"role":"user","content":"x"}]}',
      status: 400,
      code: 'invalid_request',
      param: 'model',
    },
    {
      name: 'unknown model',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}',
      status: 404,
      code: 'model_not_found',
      param: 'model',
    },
    {
      name: 'no key',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"default","messages":[{"role":"user","content":"x"}]}',
      status: 401,
      code: 'invalid_api_key',
    },
    {
      name: 'bad key',
      headers: { authorization: 'Bearer sk-nope-nope', 'content-type': 'application/json' },
      body: '{}',
      status: 401,
      code: 'invalid_api_key',
    },
    {
      name: 'malformed authorization',
      headers: { authorization: 'Basic abc', 'content-type': 'application/json' },
      body: '{}',
      status: 401,
      code: 'invalid_api_key',
    },
    {
      name: 'oversize body',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'x'.repeat(5000) }] }),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'wrong content type',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: 'hello',
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'form content type',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=b',
      status: 415,
      code: 'unsupported_media_type',
    },
    { name: 'unknown path', path: '/v2/everything', status: 404, code: 'not_found' },
    {
      name: 'unknown admin path',
      path: '/admin/nope',
      headers: { authorization: 'Bearer test-admin-token' },
      status: 404,
      code: 'not_found',
      message:
        /^No endpoint GET \/admin\/nope\. The admin API's endpoints: GET \/docs \(its reference\) and docs\/admin-api\.md\.$/,
    },
    {
      name: 'unknown tenant path',
      path: '/v1/chat/completion',
      headers: auth,
      status: 404,
      code: 'not_found',
      message: /See GET \/info for the endpoints available to your key/,
    },
    {
      name: 'wrong method',
      path: '/v1/chat/completions',
      method: 'GET',
      headers: auth,
      status: 405,
      code: 'method_not_allowed',
    },
    {
      name: 'ask without question',
      path: '/ask',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"max_tokens":5}',
      status: 400,
      code: 'invalid_request',
      param: 'question',
    },
    {
      name: 'ask with a question that is not a string',
      path: '/ask',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"question":5}',
      status: 400,
      code: 'invalid_request',
      param: 'question',
      message: /^question must be a string, got number 5: /,
    },
    {
      name: 'the admin token on a tenant endpoint',
      headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
      body: '{"model":"default","messages":[{"role":"user","content":"x"}]}',
      status: 401,
      code: 'invalid_api_key',
      message: /^This is the admin token: it opens the admin API .* Send a tenant API key here/,
    },
    {
      name: 'embeddings bad input',
      path: '/v1/embeddings',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"default","input":[]}',
      status: 400,
      code: 'invalid_request',
      param: 'input',
    },
    {
      name: 'tools malformed',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"model":"default","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}',
      status: 400,
      code: 'invalid_request',
      param: 'tools[0]',
    },
  ];

  for (const c of cases) {
    it(`${c.name} -> ${c.status} ${c.code}`, async () => {
      const res = await request(`${gw.url}${c.path ?? '/v1/chat/completions'}`, {
        method: c.method ?? (c.body !== undefined ? 'POST' : 'GET'),
        headers: c.headers ?? {},
        ...(c.body !== undefined ? { body: c.body } : {}),
      });
      const body: unknown = await res.body.json();
      assert.equal(res.statusCode, c.status, JSON.stringify(body));
      assertErrorShape(body);
      assert.equal(body.error.code, c.code);
      if (c.param !== undefined) assert.equal(body.error.param, c.param);
      if (c.message !== undefined) assert.match(body.error.message, c.message);
      assert.match(String(res.headers['x-request-id']), /^req_/);
    });
  }

  it('security headers on every response', async () => {
    const res = await request(`${gw.url}/health`);
    await res.body.dump();
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.equal(res.headers['strict-transport-security'], undefined, 'no HSTS without TLS');
  });

  it('gzip for responses over 1 KB when accepted, not for small ones', async () => {
    const big = await request(`${gw.url}/v1/embeddings`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify({ model: 'default', input: ['a', 'b', 'c', 'd'], encoding_format: 'float' }),
    });
    assert.equal(big.statusCode, 200);
    assert.equal(big.headers['content-encoding'], 'gzip');
    const json = JSON.parse(gunzipSync(Buffer.from(await big.body.arrayBuffer())).toString()) as {
      data: unknown[];
    };
    assert.equal(json.data.length, 4);
    const small = await request(`${gw.url}/health`, { headers: { 'accept-encoding': 'gzip' } });
    await small.body.dump();
    assert.equal(small.headers['content-encoding'], undefined);
    const plain = await request(`${gw.url}/v1/embeddings`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', input: ['a', 'b', 'c', 'd'], encoding_format: 'float' }),
    });
    assert.equal(plain.headers['content-encoding'], undefined);
    await plain.body.dump();
  });

  it('probes: /health, /ready with backends, /startup', async () => {
    const health = await request(`${gw.url}/health`);
    assert.equal(health.statusCode, 200);
    await health.body.dump();
    // Without the admin token: ready or not, and why in one word; nothing about models or backends.
    const ready = await request(`${gw.url}/ready`);
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(await ready.body.json(), { ready: true, reason: 'ok' });
    const wrong = await request(`${gw.url}/ready`, { headers: { authorization: 'Bearer not-the-token' } });
    assert.deepEqual(await wrong.body.json(), { ready: true, reason: 'ok' });
    // With it: the details.
    const detailed = await request(`${gw.url}/ready`, {
      headers: { authorization: 'Bearer test-admin-token' },
    });
    const body = (await detailed.body.json()) as {
      ready: boolean;
      reason: string;
      models: Record<string, Array<{ id: string; state: string }>>;
    };
    assert.equal(body.ready, true);
    assert.equal(body.reason, 'ok');
    assert.equal(body.models.default?.[0]?.state, 'healthy');
    const startup = await request(`${gw.url}/startup`);
    assert.equal(startup.statusCode, 200);
    await startup.body.dump();
  });
});
