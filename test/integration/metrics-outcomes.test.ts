/**
 * What /metrics tells an operator when a request is not a one-attempt success (review of the
 * metrics, 2026-12): retries, fallbacks, cache hits, cancelled and cut requests. Every assertion is
 * on the exact set of series a scrape shows, so an extra series (an abort counted as a backend
 * error, a retry that never went out) fails as much as a missing one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import {
  ACME_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
import { eventually, series } from '../support/metrics.js';

const MESSAGES = [{ role: 'user', content: 'hello there' }];

async function chat(
  gw: TestGateway,
  body: Record<string, unknown>,
): Promise<{ status: number; text: string }> {
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: MESSAGES, ...body }),
  });
  return { status: r.status, text: await r.text() };
}

/** A chat request whose client goes away `ms` after sending it (before any answer). */
function leaveAfter(gw: TestGateway, body: Record<string, unknown>, ms: number): Promise<void> {
  const u = new URL(gw.url);
  return new Promise((resolve) => {
    const r = request(
      {
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: '/v1/chat/completions',
        agent: false,
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      },
      () => undefined,
    );
    r.on('error', () => undefined);
    r.end(JSON.stringify({ messages: MESSAGES, ...body }));
    setTimeout(() => {
      r.destroy();
      resolve();
    }, ms);
  });
}

function gatewayWith(models: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway(
    demoConfig({
      tenants: [{ id: 'acme-corp', allowed_models: Object.keys(models), api_keys: [{ value: ACME_KEY }] }],
      models,
    }),
  );
}

describe('an attempt its own request cancelled is counted aborted, on every path', () => {
  let sim: TestSim;
  let gw: TestGateway;
  before(async () => {
    // 16 tokens 100 ms apart over HTTP: the pass-through path, with a first chunk at once.
    sim = await startTestSim({ sim: { mode: 'lorem', itl_ms: 100, output_tokens: 16 } });
    gw = await gatewayWith({
      // In-process: the provider rejects with the cancellation's AbortError.
      slow: { backends: [{ id: 'sim-slow', provider: 'sim', sim: { mode: 'echo', ttft_ms: 400 } }] },
      // The model's total time passes while the backend is still thinking (before any answer).
      deadline: {
        timeout_ms: 150,
        backends: [{ id: 'sim-late', provider: 'sim', sim: { mode: 'echo', ttft_ms: 600 } }],
      },
      // ... or in the middle of a pass-through stream.
      'deadline-stream': {
        timeout_ms: 250,
        backends: [{ id: 'http-long', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
      },
    });
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it('a client that leaves before the answer or the first chunk: aborted, not error', async () => {
    await leaveAfter(gw, { model: 'slow' }, 100);
    await leaveAfter(gw, { model: 'slow', stream: true }, 100);
    await eventually(async () =>
      assert.deepEqual(await series(gw, 'portico_upstream_requests_total', 'backend="sim-slow"'), {
        'backend="sim-slow",model="slow",status="aborted"': 2,
      }),
    );
    assert.deepEqual(await series(gw, 'portico_upstream_errors_total', 'backend="sim-slow"'), {});
    assert.deepEqual(await series(gw, 'portico_requests_total', 'model="slow"'), {
      'tenant="acme-corp",model="slow",route="chat",status="499"': 2,
    });
    assert.deepEqual(await series(gw, 'portico_circuit_state', 'backend="sim-slow"'), {
      'backend="sim-slow",model="slow"': 0,
    });
  });

  it("the request's deadline: the client gets 504, the backend's attempt is aborted, not a 504 of its own", async () => {
    const unary = await chat(gw, { model: 'deadline' });
    const stream = await chat(gw, { model: 'deadline', stream: true });
    assert.equal(unary.status, 504, unary.text);
    assert.equal(stream.status, 504, stream.text);
    const cut = await chat(gw, { model: 'deadline-stream', stream: true });
    assert.equal(cut.status, 200);
    assert.match(cut.text, /upstream_timeout/);
    await eventually(async () =>
      assert.deepEqual(await series(gw, 'portico_upstream_requests_total', 'model="deadline'), {
        'backend="sim-late",model="deadline",status="aborted"': 2,
        'backend="http-long",model="deadline-stream",status="aborted"': 1,
      }),
    );
    assert.deepEqual(await series(gw, 'portico_upstream_errors_total', 'model="deadline'), {});
    assert.deepEqual(await series(gw, 'portico_requests_total', 'model="deadline'), {
      'tenant="acme-corp",model="deadline",route="chat",status="504"': 2,
      'tenant="acme-corp",model="deadline-stream",route="chat",status="504"': 1,
    });
    assert.deepEqual(await series(gw, 'portico_requests_in_flight'), { 'tenant="acme-corp"': 0 });
  });
});
