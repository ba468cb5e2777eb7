/**
 * The OpenAI-compatible adapter against a misbehaving upstream (a small fake server): upstream
 * statuses map to the catalog, a stream cut mid-way ends with a well-formed error event, and a
 * client that disconnects aborts the upstream request at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import {
  ACME_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';

describe('upstream failures through the OpenAI-compatible adapter', () => {
  let fake: FastifyInstance;
  let fakeUrl: string;
  let sim: TestSim;
  let gw: TestGateway;
  let nextStatus = 200;
  let nextBody = '';
  let nextHeaders: Record<string, string> = {};

  before(async () => {
    fake = Fastify();
    fake.post('/v1/chat/completions', async (req, reply) => {
      const body = req.body as { stream?: boolean };
      if (body.stream && nextStatus === 200) {
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
        reply.raw.write(
          `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: 'partial ' }, finish_reason: null }] })}\n\n`,
        );
        setTimeout(() => reply.raw.destroy(), 20);
        return;
      }
      reply.code(nextStatus).headers(nextHeaders).type('application/json').send(nextBody);
    });
    fakeUrl = await fake.listen({ host: '127.0.0.1', port: 0 });
    sim = await startTestSim({ sim: { mode: 'lorem', output_tokens: 2000, itl_ms: 5 } });
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', system_prompt: 'p', api_keys: [{ value: ACME_KEY }] }],
        models: {
          // Error mapping, one attempt each: no retries, no circuit (test/drills covers those).
          flaky: {
            backends: [{ id: 'fake', provider: 'openai', base_url: `${fakeUrl}/v1` }],
            retry: { attempts: 1 },
            circuit: { failures: 1000 },
            health_check: { enabled: false },
          },
          slow: { backends: [{ id: 'slow-sim', provider: 'openai', base_url: sim.baseURL }] },
          down: { backends: [{ id: 'nowhere', provider: 'openai', base_url: 'http://127.0.0.1:9/v1' }] },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await sim.close();
    await fake.close();
  });

  const chat = async (model: string, extra: Record<string, unknown> = {}) => {
    const res = await request(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  };

  const cases: Array<{
    status: number;
    body: string;
    headers?: Record<string, string>;
    expect: number;
    code: string;
  }> = [
    {
      status: 400,
      body: '{"error":{"message":"context length exceeded","type":"invalid_request_error"}}',
      expect: 400,
      code: 'invalid_request',
    },
    { status: 401, body: '{"error":{"message":"bad upstream key"}}', expect: 502, code: 'upstream_error' },
    {
      status: 429,
      body: '{"error":{"message":"slow down"}}',
      headers: { 'retry-after': '3' },
      expect: 429,
      code: 'rate_limit_exceeded',
    },
    { status: 500, body: 'Internal Server Error', expect: 502, code: 'upstream_error' },
    { status: 503, body: '{"detail":"overloaded"}', expect: 503, code: 'upstream_unavailable' },
    { status: 504, body: '', expect: 504, code: 'upstream_timeout' },
    { status: 200, body: '{not json', expect: 502, code: 'upstream_error' },
  ];
  for (const c of cases) {
    it(`upstream ${c.status} ${c.body.slice(0, 20)} -> ${c.expect} ${c.code}`, async () => {
      nextStatus = c.status;
      nextBody = c.body;
      nextHeaders = c.headers ?? {};
      const r = await chat('flaky');
      assert.equal(r.status, c.expect, r.text);
      const err = (JSON.parse(r.text) as { error: { code: string; message: string } }).error;
      assert.equal(err.code, c.code);
      if (c.status === 400) assert.match(err.message, /context length exceeded/);
      if (c.status === 429) assert.equal(r.headers['retry-after'], '3');
    });
  }

  it('unreachable backend -> 503 upstream_unavailable naming the backend', async () => {
    const r = await chat('down');
    assert.equal(r.status, 503);
    assert.match(r.text, /nowhere/);
  });

  it('a stream cut mid-way ends with a well-formed error event, no hang', async () => {
    nextStatus = 200;
    const r = await chat('flaky', { stream: true });
    assert.equal(r.status, 200);
    const events = r.text.split('\n\n').filter(Boolean);
    assert.match(events[0] ?? '', /partial/);
    const last = JSON.parse((events.at(-1) ?? '').replace(/^data: /, '')) as {
      error: { code: string; type: string; message: string };
    };
    assert.equal(last.error.code, 'upstream_error');
    assert.match(last.error.message, /closed the stream/);
  });

  it('GET /admin/backends and /metrics count the upstream sockets of HTTP backends (kept alive after a request)', async () => {
    const r = await chat('slow', { max_tokens: 3 });
    assert.equal(r.status, 200);
    const res = await request(`${gw.url}/admin/backends`, {
      headers: { authorization: 'Bearer test-admin-token' },
    });
    const body = (await res.body.json()) as {
      data: Array<{ backends: Array<{ id: string; upstream_connections: number | null }> }>;
    };
    const slow = body.data.flatMap((m) => m.backends).find((b) => b.id === 'slow-sim');
    assert.ok(slow, 'slow-sim listed');
    assert.ok((slow.upstream_connections ?? 0) >= 1, `kept-alive sockets: ${slow.upstream_connections}`);
    const metrics = await (await request(`${gw.url}/metrics`)).body.text();
    const m = /^portico_upstream_connections\{backend="slow-sim"\} (\d+)$/m.exec(metrics);
    assert.ok(m && Number(m[1]) >= 1, 'portico_upstream_connections for slow-sim');
  });

  it('a client that disconnects mid-stream aborts the upstream request', async () => {
    const controller = new AbortController();
    const res = await request(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'slow',
        stream: true,
        messages: [{ role: 'user', content: 'long answer please' }],
      }),
      signal: controller.signal,
    });
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    assert.equal(sim.sim.running, 1, 'upstream generating');
    controller.abort();
    const until = Date.now() + 2_000;
    while (sim.sim.running > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sim.sim.running, 0, 'upstream stopped after the client left');
  });

  it('a client that disconnects while waiting for a non-streaming answer aborts the upstream request', async () => {
    const controller = new AbortController();
    const served = sim.sim.served;
    const pending = request(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'long answer please' }] }),
      signal: controller.signal,
    }).catch((err: unknown) => err);
    // 2,000 tokens at 5 ms: the simulator works on it for 10 s unless the gateway aborts it.
    let until = Date.now() + 2_000;
    while (sim.sim.running === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sim.sim.running, 1, 'upstream generating');
    controller.abort();
    assert.ok((await pending) instanceof Error, 'the client request was aborted');
    until = Date.now() + 2_000;
    while (sim.sim.running > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sim.sim.running, 0, 'upstream stopped after the client left');
    assert.equal(sim.sim.served, served, 'the generation did not run to its end');
  });
});
