/**
 * Failover between backends when one is slow or asks to be left alone (review of routing,
 * 2026-12): the per-attempt `timeout_ms` covers a stream's wait for its first chunk, and an
 * upstream's retry-after holds back only the backend that sent it. The upstreams are raw
 * node:http servers: the simulator (Fastify) would hide the first case, since Node sends the
 * status line only with the first write, while vLLM, llama.cpp and OpenAI flush their 200 headers
 * at once and the first token when it is generated.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { OPENAI_ANSWER as ANSWER, openaiChunk as chunk } from '../support/upstream-bodies.js';

/** A fake upstream on 127.0.0.1:0: `handle` answers each request (its hit count, from 1). */
interface Fake {
  server: Server;
  hits: number;
  /** Responses whose connection closed before the fake ended them (the gateway gave up). */
  abandoned: number;
  baseUrl: string;
}

async function fake(handle: (res: ServerResponse, hit: number) => void): Promise<Fake> {
  const f: Fake = { server: createServer(), hits: 0, abandoned: 0, baseUrl: '' };
  f.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      f.hits++;
      res.on('close', () => {
        if (!res.writableEnded) f.abandoned++;
      });
      handle(res, f.hits);
    });
  });
  await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
  f.baseUrl = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}/v1`;
  return f;
}

/** Headers at once, the first token after `ms` (a queued or stalled inference server). */
function stalled(ms: number) {
  return (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    const t = setTimeout(() => res.end(chunk('late') + chunk('', 'stop') + 'data: [DONE]\n\n'), ms);
    res.on('close', () => clearTimeout(t));
  };
}

/** The first token at once, the rest after `ms`: a stream may take longer than `timeout_ms`. */
function prompt(ms: number) {
  return (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk('fast '));
    const t = setTimeout(() => res.end(chunk('answer') + chunk('', 'stop') + 'data: [DONE]\n\n'), ms);
    res.on('close', () => clearTimeout(t));
  };
}

function limited(headers: Record<string, string>) {
  return (res: ServerResponse): void => {
    res.writeHead(429, { 'content-type': 'application/json', ...headers });
    res.end('{"error":{"message":"rate limited for this key","type":"rate_limit_error"}}');
  };
}

function ok(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(ANSWER);
}

async function chat(
  gw: TestGateway,
  model: string,
  stream = false,
): Promise<{ status: number; text: string; ms: number; headers: Headers }> {
  const t0 = performance.now();
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await r.text();
  return { status: r.status, text, ms: performance.now() - t0, headers: r.headers };
}

async function metric(gw: TestGateway, line: RegExp): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m === undefined ? 0 : Number(m.slice(m.lastIndexOf(' ') + 1));
}

const hc = { enabled: false };

/** A gateway whose one tenant may use every model of `models`. */
function gatewayWith(models: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway(
    demoConfig({
      tenants: [{ id: 'acme-corp', allowed_models: Object.keys(models), api_keys: [{ value: ACME_KEY }] }],
      models,
    }),
  );
}

describe('per-attempt timeout_ms on streams covers the wait for the first chunk', () => {
  const fakes: Record<string, Fake> = {};
  let gw: TestGateway;

  before(async () => {
    for (const name of ['slowPass', 'slowParsed', 'slowAlone', 'hang'])
      fakes[name] = await fake(stalled(5_000));
    // Its stream lasts 450 ms, longer than its timeout_ms: only the first chunk is timed.
    fakes.fast = await fake(prompt(450));
    const backend = (id: string, f: Fake) => ({
      id,
      provider: 'vllm',
      base_url: f.baseUrl,
      model: 'm',
      timeout_ms: 300,
    });
    const models: Record<string, unknown> = {
      // OpenAI-compatible backends only: the pass-through path (dispatchRawStream).
      pass: {
        backends: [backend('slow-pass', fakes.slowPass as Fake), backend('fast', fakes.fast as Fake)],
        retry: { attempts: 2, backoff_ms: 1 },
        health_check: hc,
      },
      // With a simulator in the pool: the parsed-chunk path (dispatchStream).
      parsed: {
        backends: [
          backend('slow-parsed', fakes.slowParsed as Fake),
          { id: 'sim-fast', provider: 'sim', sim: { output_tokens: 3 } },
        ],
        retry: { attempts: 2, backoff_ms: 1 },
        health_check: hc,
      },
      // A generous timeout_ms: the client gives up first.
      hang: {
        backends: [{ ...backend('hang', fakes.hang as Fake), timeout_ms: 10_000 }],
        retry: { attempts: 1 },
        health_check: hc,
      },
      alone: {
        backends: [backend('slow-alone', fakes.slowAlone as Fake)],
        retry: { attempts: 1 },
        health_check: hc,
      },
    };
    gw = await gatewayWith(models);
  });

  after(async () => {
    await gw.close();
    for (const f of Object.values(fakes)) f.server.close();
  });

  it('pass-through: the stalled backend is cancelled after its 300 ms and the other answers the stream', async () => {
    // Round robin: the first request goes to the first backend (the stalled one).
    const r = await chat(gw, 'pass', true);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.text.includes('"fast "') && r.text.includes('"answer"'), r.text);
    assert.ok(r.text.endsWith('data: [DONE]\n\n'), r.text);
    assert.equal(fakes.slowPass?.hits, 1);
    assert.equal(fakes.fast?.hits, 1);
    // 300 ms, then the other backend's 450 ms stream (and the ledger's journal before [DONE]):
    // well under the stalled backend's 5 s.
    assert.ok(r.ms < 2_500, `took ${Math.round(r.ms)} ms`);
    assert.equal(fakes.slowPass?.abandoned, 1, 'the timed-out attempt was cancelled upstream');
    assert.equal(
      await metric(gw, /^portico_upstream_errors_total\{.*backend="slow-pass".*class="timeout"/),
      1,
    );
  });

  it('parsed chunks: the same failover, before any byte reached the client', async () => {
    const r = await chat(gw, 'parsed', true);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.text.endsWith('data: [DONE]\n\n'), r.text);
    assert.ok(!r.text.includes('late'), 'nothing from the stalled backend');
    assert.equal(fakes.slowParsed?.hits, 1);
    // 300 ms, timed to the millisecond (undici's own timers tick at ~1 s).
    assert.ok(r.ms < 1_000, `took ${Math.round(r.ms)} ms`);
    assert.equal(fakes.slowParsed?.abandoned, 1, 'the timed-out attempt was cancelled upstream');
    assert.equal(
      await metric(gw, /^portico_upstream_errors_total\{.*backend="slow-parsed".*class="timeout"/),
      1,
    );
  });

  it('no other backend: a 504 upstream_timeout naming the backend and its limit', async () => {
    const r = await chat(gw, 'alone', true);
    assert.equal(r.status, 504, r.text);
    const body = JSON.parse(r.text) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'upstream_timeout');
    assert.match(body.error.message, /slow-alone .*300 ms/);
    // 300 ms, timed to the millisecond (undici's own timers tick at ~1 s).
    assert.ok(r.ms < 1_000, `took ${Math.round(r.ms)} ms`);
  });

  it('a client that leaves before the first chunk still cancels the attempt upstream at once', async () => {
    const ac = new AbortController();
    const req = fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'hang', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      signal: ac.signal,
    });
    const hang = fakes.hang as Fake;
    while (hang.hits === 0) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await assert.rejects(req);
    const deadline = Date.now() + 1_000;
    while (hang.abandoned === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(hang.abandoned, 1, 'the upstream request was not cancelled');
  });
});

describe('per-attempt timeout_ms on non-streaming calls, to the millisecond, for every provider', () => {
  let slow: Fake;
  let gw: TestGateway;

  before(async () => {
    // Answers after 5 s: undici's own timers (the only limit before) tick at ~1 s.
    slow = await fake((res) => {
      const t = setTimeout(() => ok(res), 5_000);
      res.on('close', () => clearTimeout(t));
    });
    // The simulator runs in-process: before, it ignored timeout_ms altogether.
    const simSlow = {
      id: 'sim-slow',
      provider: 'sim',
      timeout_ms: 300,
      sim: { ttft_ms: 5_000, output_tokens: 3 },
    };
    const models: Record<string, unknown> = {
      http: {
        backends: [
          { id: 'http-slow', provider: 'vllm', base_url: slow.baseUrl, model: 'm', timeout_ms: 300 },
        ],
        retry: { attempts: 1 },
        health_check: hc,
      },
      sim: { backends: [simSlow], retry: { attempts: 1 }, health_check: hc },
      'sim-pair': {
        backends: [
          { ...simSlow, id: 'sim-slow-2' },
          { id: 'sim-fast', provider: 'sim', sim: { output_tokens: 3 } },
        ],
        retry: { attempts: 2, backoff_ms: 1 },
        health_check: hc,
      },
    };
    gw = await gatewayWith(models);
  });

  after(async () => {
    slow.server.close();
    slow.server.closeAllConnections();
    await gw?.close();
  });

  for (const [model, backend] of [
    ['http', 'http-slow'],
    ['sim', 'sim-slow'],
  ] as const) {
    it(`${model}: a 504 upstream_timeout after the backend's 300 ms, naming it`, async () => {
      const r = await chat(gw, model);
      assert.equal(r.status, 504, r.text);
      const body = JSON.parse(r.text) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'upstream_timeout');
      assert.match(
        body.error.message,
        new RegExp(`${backend} did not answer within its timeout_ms of 300 ms`),
      );
      assert.ok(r.ms < 800, `took ${Math.round(r.ms)} ms`);
    });
  }

  it('the timed-out attempt is retried on the other backend', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await chat(gw, 'sim-pair');
      assert.equal(r.status, 200, r.text);
      assert.ok(r.ms < 1_500, `took ${Math.round(r.ms)} ms`);
    }
    assert.ok(
      (await metric(gw, /^portico_upstream_errors_total\{.*backend="sim-slow".*class="timeout"/)) >= 1,
    );
  });
});

describe("an upstream's retry-after holds back the backend that sent it, not the request", () => {
  const fakes: Record<string, Fake> = {};
  let gw: TestGateway;

  before(async () => {
    fakes.long = await fake(limited({ 'retry-after': '20' }));
    fakes.short = await fake(limited({ 'retry-after': '3' }));
    fakes.lone = await fake(limited({ 'retry-after': '20' }));
    fakes.primary = await fake(limited({ 'retry-after': '20' }));
    // Rate limited once for 800 ms, then answers.
    fakes.once = await fake((res, hit) => (hit === 1 ? limited({ 'retry-after-ms': '800' })(res) : ok(res)));
    // Rate limited once for 300 ms.
    fakes.blip = await fake((res, hit) => (hit === 1 ? limited({ 'retry-after-ms': '300' })(res) : ok(res)));
    for (const name of ['goodA', 'goodB', 'goodC', 'goodD']) fakes[name] = await fake(ok);
    const backend = (id: string, f: Fake) => ({ id, provider: 'openai', base_url: f.baseUrl, model: 'm' });
    const retry = { attempts: 3, backoff_ms: 1 };
    const models: Record<string, unknown> = {
      // Two upstream keys for one model; the first is rate limited for 20 s (over max_retry_after_ms).
      long: {
        backends: [backend('long-429', fakes.long as Fake), backend('long-ok', fakes.goodA as Fake)],
        retry,
        health_check: hc,
      },
      // ... for 3 s (under max_retry_after_ms): nobody waits for it while the other key is free.
      short: {
        backends: [backend('short-429', fakes.short as Fake), backend('short-ok', fakes.goodB as Fake)],
        retry,
        health_check: hc,
      },
      // One backend, nothing else to try: its hint goes to the client.
      lone: { backends: [backend('lone-429', fakes.lone as Fake)], retry, health_check: hc },
      // One backend with a fallback: the fallback answers at once.
      primary: {
        backends: [backend('primary-429', fakes.primary as Fake)],
        fallbacks: ['backup'],
        retry,
        health_check: hc,
      },
      backup: { backends: [backend('backup-ok', fakes.goodC as Fake)], health_check: hc },
      // One backend, a short hint: waited for, then the same backend answers.
      once: { backends: [backend('once-429', fakes.once as Fake)], retry, health_check: hc },
      // A short hint in a pool of two: the backend takes requests again once it expired.
      blip: {
        backends: [backend('blip-429', fakes.blip as Fake), backend('blip-ok', fakes.goodD as Fake)],
        retry,
        health_check: hc,
      },
    };
    gw = await gatewayWith(models);
  });

  after(async () => {
    await gw.close();
    for (const f of Object.values(fakes)) f.server.close();
  });

  it('a hint over max_retry_after_ms: the other backend answers, and the limited one cools down', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await chat(gw, 'long')).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
    // Asked once; passed over by the pool (round robin would send it every other request) until its hint expires.
    assert.equal(fakes.long?.hits, 1);
    assert.equal(fakes.goodA?.hits, 6);
  });

  it('a hint under max_retry_after_ms: the other backend answers without waiting for it', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await chat(gw, 'short');
      assert.equal(r.status, 200, r.text);
      assert.ok(r.ms < 1_000, `request ${i} took ${Math.round(r.ms)} ms (the 3 s hint was waited for)`);
    }
    assert.equal(fakes.short?.hits, 1);
  });

  it('a pool of one with a fallback: the fallback answers at once', async () => {
    const r = await chat(gw, 'primary');
    assert.equal(r.status, 200, r.text);
    assert.ok(r.ms < 1_000, `took ${Math.round(r.ms)} ms`);
    assert.equal(fakes.primary?.hits, 1);
  });

  it('nothing else to try: a hint over max_retry_after_ms goes to the client with its retry-after', async () => {
    const r = await chat(gw, 'lone');
    assert.equal(r.status, 429, r.text);
    assert.equal(r.headers.get('retry-after'), '20');
    assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, 'rate_limit_exceeded');
    assert.equal(fakes.lone?.hits, 1);
    assert.ok(r.ms < 1_000, `took ${Math.round(r.ms)} ms`);
  });

  it('nothing else to try: a short hint is waited for, then the same backend is asked again', async () => {
    const r = await chat(gw, 'once');
    assert.equal(r.status, 200, r.text);
    assert.equal(fakes.once?.hits, 2);
    assert.ok(r.ms >= 750, `took ${Math.round(r.ms)} ms: the 800 ms hint was not waited for`);
  });

  it('a cooling backend takes requests again once its hint expired', async () => {
    assert.equal((await chat(gw, 'blip')).status, 200);
    assert.equal((await chat(gw, 'blip')).status, 200);
    assert.equal(fakes.blip?.hits, 1, 'passed over while cooling down');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await chat(gw, 'blip')).status, 200);
    assert.equal((await chat(gw, 'blip')).status, 200);
    assert.equal(fakes.blip?.hits, 2, 'round robin sends it one of the two requests after its hint');
  });
});
