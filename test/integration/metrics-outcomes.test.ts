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

/** 503 on every request: an in-process backend that always fails (retryable, counts against it). */
const failing = (id: string) => ({
  id,
  provider: 'sim',
  sim: { mode: 'echo', faults: { error_rate: 1, error_status: 503 } },
});
const working = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  provider: 'sim',
  sim: { mode: 'echo', ...extra },
});
const quick = { attempts: 3, backoff_ms: 1, max_backoff_ms: 1 };

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** The usage of a JSON answer, or of a stream's usage chunk. */
function usageOf(text: string): Usage {
  if (!text.startsWith('data:')) return (JSON.parse(text) as { usage: Usage }).usage;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const c = JSON.parse(line.slice(6)) as { usage?: Usage | null };
    if (c.usage) return c.usage;
  }
  throw new Error(`no usage in ${text}`);
}

describe('retries and fallbacks: each attempt against its backend, the request and its tokens once', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith({
      // Round robin: the first request tries bad-p first, then good-p.
      pair: { retry: quick, backends: [failing('bad-p'), working('good-p')] },
      'pair-stream': { retry: quick, backends: [failing('bad-ps'), working('good-ps')] },
      // The primary's one backend fails (and its circuit opens at once): `small` answers.
      primary: {
        retry: quick,
        circuit: { failures: 1, open_ms: 600_000 },
        fallbacks: ['small'],
        pricing: { input_per_million: 1_000_000, output_per_million: 1_000_000 },
        backends: [failing('bad-a')],
      },
      small: {
        pricing: { input_per_million: 100_000, output_per_million: 200_000 },
        backends: [working('good-s')],
      },
      // Three attempts allowed; the fallback's circuit opens at its first failure, so the third
      // attempt finds no backend to go to.
      doomed: { retry: quick, fallbacks: ['broken'], backends: [failing('bad-x')] },
      broken: { circuit: { failures: 1, open_ms: 600_000 }, backends: [failing('bad-y')] },
      // An A/B split priced on its variants only.
      ab: {
        split: [
          { model: 'ab-one', weight: 1 },
          { model: 'ab-two', weight: 1 },
        ],
      },
      'ab-one': {
        pricing: { input_per_million: 1_000_000, output_per_million: 0 },
        backends: [working('ab-1')],
      },
      'ab-two': {
        pricing: { input_per_million: 1_000_000, output_per_million: 0 },
        backends: [working('ab-2')],
      },
    });
  });
  after(async () => {
    await gw.close();
  });

  for (const [model, bad, good, stream] of [
    ['pair', 'bad-p', 'good-p', false],
    ['pair-stream', 'bad-ps', 'good-ps', true],
  ] as const) {
    it(`a retry on another backend of the pool (${stream ? 'stream' : 'unary'})`, async () => {
      const r = await chat(gw, {
        model,
        stream,
        stream_options: stream ? { include_usage: true } : undefined,
      });
      assert.equal(r.status, 200, r.text);
      const usage = usageOf(r.text);
      const only = `model="${model}"`;
      assert.deepEqual(await series(gw, 'portico_upstream_requests_total', only), {
        [`backend="${bad}",${only},status="503"`]: 1,
        [`backend="${good}",${only},status="200"`]: 1,
      });
      assert.deepEqual(await series(gw, 'portico_upstream_duration_seconds_count', only), {
        [`backend="${bad}",${only}`]: 1,
        [`backend="${good}",${only}`]: 1,
      });
      assert.deepEqual(await series(gw, 'portico_upstream_errors_total', only), {
        [`backend="${bad}",${only},class="status_5xx"`]: 1,
      });
      assert.deepEqual(await series(gw, 'portico_retries_total', only), { [`${only},backend="${bad}"`]: 1 });
      assert.deepEqual(await series(gw, 'portico_fallbacks_total', only), {
        [`${only},from_backend="${bad}",to_backend="${good}"`]: 1,
      });
      assert.deepEqual(await series(gw, 'portico_requests_total', only), {
        [`tenant="acme-corp",${only},route="chat",status="200"`]: 1,
      });
      assert.deepEqual(await series(gw, 'portico_tokens_total', only), {
        [`tenant="acme-corp",${only},direction="input"`]: usage.prompt_tokens,
        [`tenant="acme-corp",${only},direction="output"`]: usage.completion_tokens,
      });
    });
  }

  /** The usage of the two requests answered by the fallback model (test below). */
  const answered: Usage[] = [];

  it('a fallback model: counted as a fallback whether the primary failed or its circuit is open', async () => {
    // 1: bad-a answers 503 (its circuit opens), the retry goes to the fallback model.
    const first = await chat(gw, { model: 'primary' });
    assert.equal(first.status, 200, first.text);
    // 2: bad-a's circuit is open: no attempt on the primary, straight to the fallback.
    const second = await chat(gw, { model: 'primary' });
    assert.equal(second.status, 200, second.text);
    const u1 = usageOf(first.text);
    const u2 = usageOf(second.text);
    answered.push(u1, u2);
    assert.deepEqual(
      {
        ...(await series(gw, 'portico_upstream_requests_total', 'backend="bad-a"')),
        ...(await series(gw, 'portico_upstream_requests_total', 'backend="good-s"')),
      },
      {
        'backend="bad-a",model="primary",status="503"': 1,
        'backend="good-s",model="small",status="200"': 2,
      },
    );
    assert.deepEqual(await series(gw, 'portico_retries_total', 'model="primary"'), {
      'model="primary",backend="bad-a"': 1,
    });
    assert.deepEqual(await series(gw, 'portico_fallbacks_total', 'model="primary"'), {
      'model="primary",from_backend="bad-a",to_backend="good-s"': 1,
      'model="primary",from_backend="_none",to_backend="good-s"': 1,
    });
    // The request-level series keep the alias the client asked for, once per request.
    assert.deepEqual(await series(gw, 'portico_requests_total', 'model="primary"'), {
      'tenant="acme-corp",model="primary",route="chat",status="200"': 2,
    });
    assert.deepEqual(await series(gw, 'portico_tokens_total', 'model="primary"'), {
      'tenant="acme-corp",model="primary",direction="input"': u1.prompt_tokens + u2.prompt_tokens,
      'tenant="acme-corp",model="primary",direction="output"': u1.completion_tokens + u2.completion_tokens,
    });
    assert.deepEqual(await series(gw, 'portico_tokens_total', 'model="small"'), {});
  });

  it("a fallback model's answers are priced at its prices, not the primary's", async () => {
    const [u1, u2] = answered as [Usage, Usage];
    // small's prices (0.1 and 0.2 USD per token), not the primary's (1 USD per token).
    const cost = await series(gw, 'portico_cost_usd_total', 'model="primary"');
    const want =
      (u1.prompt_tokens + u2.prompt_tokens) * 0.1 + (u1.completion_tokens + u2.completion_tokens) * 0.2;
    assert.ok(
      Math.abs((cost['tenant="acme-corp",model="primary"'] ?? 0) - want) < 1e-9,
      JSON.stringify(cost),
    );
    assert.deepEqual(await series(gw, 'portico_cost_usd_total', 'model="small"'), {});
  });

  it('a retry is counted only when it goes out (none left to go to: not counted)', async () => {
    const r = await chat(gw, { model: 'doomed' });
    assert.equal(r.status, 503, r.text);
    // Two attempts were made (bad-x, then bad-y); the third found bad-y's circuit open.
    assert.deepEqual(
      {
        ...(await series(gw, 'portico_upstream_requests_total', 'backend="bad-x"')),
        ...(await series(gw, 'portico_upstream_requests_total', 'backend="bad-y"')),
      },
      {
        'backend="bad-x",model="doomed",status="503"': 1,
        'backend="bad-y",model="broken",status="503"': 1,
      },
    );
    assert.deepEqual(await series(gw, 'portico_retries_total', 'model="doomed"'), {
      'model="doomed",backend="bad-x"': 1,
    });
    assert.deepEqual(await series(gw, 'portico_fallbacks_total', 'model="doomed"'), {
      'model="doomed",from_backend="bad-x",to_backend="bad-y"': 1,
    });
    assert.deepEqual(await series(gw, 'portico_requests_total', 'model="doomed"'), {
      'tenant="acme-corp",model="doomed",route="chat",status="503"': 1,
    });
  });

  it("an A/B split's answer is priced at its variant's prices", async () => {
    const r = await chat(gw, { model: 'ab' });
    assert.equal(r.status, 200, r.text);
    const u = usageOf(r.text);
    assert.deepEqual(await series(gw, 'portico_cost_usd_total', 'model="ab"'), {
      'tenant="acme-corp",model="ab"': u.prompt_tokens,
    });
    assert.deepEqual(await series(gw, 'portico_requests_in_flight'), { 'tenant="acme-corp"': 0 });
  });
});

describe('every gauge that goes up comes down, on every path', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(
      demoConfig({
        admission: { queue_timeout_ms: 10_000 },
        tenants: [
          // One request at a time: a second one waits in the admission queue.
          {
            id: 'acme-corp',
            allowed_models: ['slow', 'cut'],
            api_keys: [{ value: ACME_KEY }],
            limits: { max_in_flight: 1 },
          },
          // One request per 1,000 s: the second is refused with 429.
          {
            id: 'tight',
            allowed_models: ['slow'],
            api_keys: [{ value: 'sk-test-tight' }],
            limits: { requests_per_second: 0.001, burst: 1 },
          },
        ],
        models: {
          slow: { backends: [working('sim-slow', { ttft_ms: 300, itl_ms: 50, output_tokens: 8 })] },
          cut: {
            backends: [
              working('sim-cut', {
                itl_ms: 10,
                output_tokens: 8,
                faults: { disconnect_rate: 1, disconnect_after_chunks: 2 },
              }),
            ],
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
  });

  it('refused (401, 429), invalid (400), queued and left, cancelled, cut: back to 0', async () => {
    const as = (key: string, body: Record<string, unknown>) =>
      fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
    assert.equal((await as('sk-wrong', { model: 'slow', messages: MESSAGES })).status, 401);
    assert.equal((await as('sk-test-tight', { model: 'slow', messages: MESSAGES })).status, 200);
    assert.equal((await as('sk-test-tight', { model: 'slow', messages: MESSAGES })).status, 429);
    assert.equal((await as(ACME_KEY, { model: 'slow' })).status, 400);
    // A stream the upstream cuts after two chunks: 200, then the error event.
    const cut = await as(ACME_KEY, { model: 'cut', stream: true, messages: MESSAGES });
    assert.match(cut.text, /upstream_error/);
    // The first holds acme-corp's one slot (cancelled during its first token); the second waits in
    // the queue and its client leaves there.
    const holding = leaveAfter(gw, { model: 'slow', stream: true }, 250);
    await new Promise((r) => setTimeout(r, 50));
    const queued = leaveAfter(gw, { model: 'slow' }, 150);
    await eventually(async () =>
      assert.deepEqual(await series(gw, 'portico_queue_depth'), { 'tenant="acme-corp"': 1 }),
    );
    // In flight from authentication on: the queued request too.
    assert.deepEqual(await series(gw, 'portico_requests_in_flight'), {
      'tenant="acme-corp"': 2,
      'tenant="tight"': 0,
    });
    await queued;
    await holding;
    await eventually(async () =>
      assert.deepEqual(await series(gw, 'portico_requests_in_flight'), {
        'tenant="acme-corp"': 0,
        'tenant="tight"': 0,
      }),
    );
    assert.deepEqual(await series(gw, 'portico_queue_depth'), { 'tenant="acme-corp"': 0 });
    assert.deepEqual(await series(gw, 'portico_requests_total'), {
      'tenant="_anonymous",model="_unknown",route="chat",status="401"': 1,
      'tenant="tight",model="slow",route="chat",status="200"': 1,
      'tenant="tight",model="_unknown",route="chat",status="429"': 1,
      'tenant="acme-corp",model="_unknown",route="chat",status="400"': 1,
      'tenant="acme-corp",model="cut",route="chat",status="502"': 1,
      'tenant="acme-corp",model="slow",route="chat",status="499"': 2,
    });
    assert.equal(gw.gateway.deps.openRequests?.size, 0);
  });

  it('the console playground: a client that leaves before the first chunk is finished (499)', async () => {
    const u = new URL(gw.url);
    await new Promise<void>((resolve) => {
      const r = request(
        {
          host: u.hostname,
          port: u.port,
          method: 'POST',
          path: '/admin/playground',
          agent: false,
          headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
        },
        () => undefined,
      );
      r.on('error', () => undefined);
      r.end(JSON.stringify({ tenant: 'acme-corp', model: 'slow', question: 'hi' }));
      setTimeout(() => {
        r.destroy();
        resolve();
      }, 100);
    });
    await eventually(async () =>
      assert.deepEqual(await series(gw, 'portico_requests_in_flight'), {
        'tenant="acme-corp"': 0,
        'tenant="tight"': 0,
      }),
    );
    assert.deepEqual(await series(gw, 'portico_requests_total', 'route="chat",status="499"'), {
      'tenant="acme-corp",model="slow",route="chat",status="499"': 3,
    });
    assert.deepEqual(await series(gw, 'portico_upstream_requests_total', 'status="aborted"'), {
      'backend="sim-slow",model="slow",status="aborted"': 2,
    });
    // One that completes: counted open while it runs and done once (not below 0: shutdown would
    // stop waiting for a tenant request still running).
    const done = await fetch(`${gw.url}/admin/playground`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'acme-corp', model: 'slow', question: 'hi' }),
    });
    assert.equal(done.status, 200);
    assert.match(await done.text(), /\[DONE\]/);
    await eventually(async () =>
      assert.deepEqual(await series(gw, 'portico_requests_in_flight'), {
        'tenant="acme-corp"': 0,
        'tenant="tight"': 0,
      }),
    );
    assert.equal(gw.gateway.deps.openRequests?.size, 0);
  });
});

describe('cache hits and single-flight followers: no upstream samples, priced once', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith({
      cached: {
        pricing: { input_per_million: 1_000_000, output_per_million: 1_000_000 },
        backends: [working('sim-cached', { ttft_ms: 200 })],
      },
    });
  });
  after(async () => {
    await gw.close();
  });

  it('an L1 hit (unary and stream) and a coalesced follower', async () => {
    const body = { model: 'cached', temperature: 0 };
    // A leader and a follower that joins its flight, then a hit from L1.
    const [leader, follower] = await Promise.all([
      chat(gw, body),
      new Promise((r) => setTimeout(r, 50)).then(() => chat(gw, body)),
    ]);
    const hit = await chat(gw, body);
    const stream = { ...body, stream: true, stream_options: { include_usage: true } };
    const streamed = await chat(gw, stream);
    const replayed = await chat(gw, stream);
    for (const r of [leader, follower, hit, streamed, replayed]) assert.equal(r.status, 200, r.text);
    const u = usageOf(leader.text);
    const us = usageOf(streamed.text);
    // Two upstream calls in all: the leader's and the first stream.
    assert.deepEqual(await series(gw, 'portico_upstream_requests_total'), {
      'backend="sim-cached",model="cached",status="200"': 2,
    });
    assert.deepEqual(await series(gw, 'portico_upstream_duration_seconds_count'), {
      'backend="sim-cached",model="cached"': 2,
    });
    assert.deepEqual(await series(gw, 'portico_cache_lookups_total'), {
      'tenant="acme-corp",tier="l1",result="miss"': 3,
      'tenant="acme-corp",tier="l1",result="hit"': 2,
    });
    assert.deepEqual(await series(gw, 'portico_cache_coalesced_total'), { 'tenant="acme-corp"': 1 });
    assert.deepEqual(await series(gw, 'portico_requests_total'), {
      'tenant="acme-corp",model="cached",route="chat",status="200"': 5,
    });
    // Tokens: accounted for every request that received the answer (as the ledger records them);
    // cost: only the two upstream calls.
    assert.deepEqual(await series(gw, 'portico_tokens_total'), {
      'tenant="acme-corp",model="cached",direction="input"': 3 * u.prompt_tokens + 2 * us.prompt_tokens,
      'tenant="acme-corp",model="cached",direction="output"':
        3 * u.completion_tokens + 2 * us.completion_tokens,
    });
    const cost = await series(gw, 'portico_cost_usd_total');
    const want = u.prompt_tokens + u.completion_tokens + us.prompt_tokens + us.completion_tokens;
    assert.ok(Math.abs((cost['tenant="acme-corp",model="cached"'] ?? 0) - want) < 1e-9, JSON.stringify(cost));
    // Time to first token is what the client saw: both streams, the replay included.
    assert.deepEqual(await series(gw, 'portico_time_to_first_token_seconds_count'), {
      'tenant="acme-corp",model="cached"': 2,
    });
    assert.deepEqual(await series(gw, 'portico_requests_in_flight'), { 'tenant="acme-corp"': 0 });
  });
});
