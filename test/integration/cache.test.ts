/**
 * Response cache through a running gateway: miss/hit/bypass, Cache-Control no-cache and no-store,
 * TTL expiry, LRU eviction, stream replay (byte-equal SSE; the openai SDK sees the same content and
 * usage), single-flight (50 identical concurrent requests -> one upstream call, streams too),
 * tenant isolation for byte-identical upstream requests, ledger records for hits, and Redis down
 * -> L1 only with the metric saying so. An answer a fallback model gave is not stored under the
 * primary's key (unary and streams).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import type { LedgerRecord } from '../../src/state/ports.js';
import {
  ACME_KEY,
  CLOSED_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
import { abortable, metric, post, upstreamCalls } from '../support/cache-requests.js';

function chatBody(content: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    model: 'default',
    messages: [{ role: 'user', content }],
    max_tokens: 12,
    temperature: 0,
    ...extra,
  });
}

function simModel(sim: TestSim): Record<string, unknown> {
  return {
    default: {
      pricing: { input_per_million: 1000, output_per_million: 1000 },
      backends: [{ id: 'sim-http', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
    },
  };
}

describe('response cache', () => {
  let sim: TestSim;
  let gw: TestGateway;
  const ledger: LedgerRecord[] = [];

  before(async () => {
    sim = await startTestSim({
      sim: { mode: 'lorem', ttft_ms: 150, output_tokens: 8 },
      recordRequests: 1000,
    });
    gw = await startTestGateway(demoConfig({ models: simModel(sim) }));
    const writer = gw.gateway.tenancy?.state.ledgerWriter;
    assert.ok(writer);
    const write = writer.write.bind(writer);
    writer.write = (r: LedgerRecord) => {
      ledger.push(r);
      return write(r);
    };
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it('miss, then an L1 hit with the same body; the hit is in the ledger at zero cost', async () => {
    const before = upstreamCalls(sim);
    const body = chatBody('what is a cache?');
    const first = await post(gw, body);
    assert.equal(first.status, 200);
    assert.equal(first.cache, 'miss');
    const second = await post(gw, body);
    assert.equal(second.cache, 'hit');
    assert.equal(second.tier, 'l1');
    assert.equal(second.text, first.text);
    assert.equal(upstreamCalls(sim) - before, 1);
    const [a, b] = [JSON.parse(first.text) as { id: string }, JSON.parse(second.text) as { id: string }];
    await new Promise((r) => setTimeout(r, 20));
    const recA = ledger.find((r) => r.request_id !== undefined && r.cache_hit === false && r.status === 200);
    const hits = ledger.filter((r) => r.cache_hit);
    assert.ok(recA && recA.cost_usd > 0, 'the miss is billed');
    assert.equal(hits.length, 1);
    assert.equal(hits[0]?.cost_usd, 0);
    assert.equal(hits[0]?.backend, null);
    assert.ok((hits[0]?.tokens_out ?? 0) > 0, 'tokens of a hit are still recorded');
    assert.equal(a.id, b.id);
  });

  it('non-deterministic requests bypass the cache; errors carry the header too', async () => {
    const before = upstreamCalls(sim);
    const body = chatBody('tell me a story', { temperature: 0.8 });
    const r1 = await post(gw, body);
    const r2 = await post(gw, body);
    assert.equal(r1.cache, 'bypass');
    assert.equal(r2.cache, 'bypass');
    assert.equal(upstreamCalls(sim) - before, 2);
    const noTemp = await post(
      gw,
      JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'x' }] }),
    );
    assert.equal(noTemp.cache, 'bypass');
    const seeded = await post(gw, chatBody('seeded', { temperature: 1, seed: 7 }));
    assert.equal(seeded.cache, 'miss');
    const bad = await post(gw, chatBody('x'), 'sk-wrong');
    assert.equal(bad.status, 401);
    assert.equal(bad.cache, 'bypass');
  });

  it('Cache-Control: no-cache skips the lookup; no-store does not store', async () => {
    const body = chatBody('no-cache please');
    await post(gw, body);
    const before = upstreamCalls(sim);
    const fresh = await post(gw, body, ACME_KEY, { 'cache-control': 'no-cache' });
    assert.equal(fresh.cache, 'miss');
    assert.equal(upstreamCalls(sim) - before, 1);
    const other = chatBody('never store this');
    const s1 = await post(gw, other, ACME_KEY, { 'cache-control': 'no-store' });
    assert.equal(s1.cache, 'miss');
    const s2 = await post(gw, other);
    assert.equal(s2.cache, 'miss', 'a no-store answer was not stored');
    const s3 = await post(gw, other);
    assert.equal(s3.cache, 'hit');
  });

  it('a streamed response is replayed byte for byte, and the SDK sees the same text and usage', async () => {
    const body = chatBody('stream me', { stream: true, stream_options: { include_usage: true } });
    const first = await post(gw, body);
    const second = await post(gw, body);
    assert.equal(first.cache, 'miss');
    assert.equal(second.cache, 'hit');
    assert.equal(second.text, first.text);
    assert.match(second.text, /data: \[DONE\]/);

    const client = new OpenAI({ apiKey: ACME_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const collect = async (): Promise<{ text: string; usage: number | undefined; chunks: number }> => {
      const stream = await client.chat.completions.create({
        model: 'default',
        temperature: 0,
        max_tokens: 12,
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'sdk stream' }],
      });
      let text = '';
      let usage: number | undefined;
      let chunks = 0;
      for await (const c of stream) {
        chunks++;
        text += c.choices[0]?.delta.content ?? '';
        if (c.usage) usage = c.usage.total_tokens;
      }
      return { text, usage, chunks };
    };
    const a = await collect();
    const before = upstreamCalls(sim);
    const b = await collect();
    assert.equal(upstreamCalls(sim), before, 'served from the cache');
    assert.deepEqual(b, a);
    assert.ok(a.text.length > 0 && (a.usage ?? 0) > 0);

    // A client that did not ask for usage gets no usage chunk from the same entry.
    const noUsage = await post(gw, chatBody('sdk stream', { stream: true }));
    assert.equal(noUsage.cache, 'hit');
    assert.doesNotMatch(noUsage.text, /"usage":\{/);
  });

  it('single-flight: 50 identical concurrent requests make one upstream call; streams too', async () => {
    const before = upstreamCalls(sim);
    const body = chatBody('coalesce me');
    const results = await Promise.all(Array.from({ length: 50 }, () => post(gw, body)));
    assert.equal(upstreamCalls(sim) - before, 1);
    assert.ok(results.every((r) => r.status === 200 && r.text === results[0]?.text));
    assert.ok(results.filter((r) => r.tier === 'coalesced').length >= 1);
    assert.ok((await metric(gw, 'portico_cache_coalesced_total')) >= 1);

    const before2 = upstreamCalls(sim);
    const sbody = chatBody('coalesce my stream', { stream: true });
    const streams = await Promise.all(Array.from({ length: 20 }, () => post(gw, sbody)));
    assert.equal(upstreamCalls(sim) - before2, 1);
    assert.ok(streams.every((r) => r.status === 200 && r.text === streams[0]?.text));
  });

  it('metrics count hits and misses by tier', async () => {
    assert.ok((await metric(gw, 'portico_cache_lookups_total', 'tier="l1",result="hit"')) >= 3);
    assert.ok((await metric(gw, 'portico_cache_lookups_total', 'tier="l1",result="miss"')) >= 3);
    assert.ok((await metric(gw, 'portico_cache_entries', 'tier="l1"')) >= 3);
    assert.ok((await metric(gw, 'portico_cache_bytes', 'tier="l1"')) > 0);
  });
});

describe('response cache: isolation, expiry, eviction, Redis down', () => {
  let sim: TestSim;
  after(async () => sim?.close());
  before(async () => {
    sim = await startTestSim({ sim: { mode: 'echo' }, recordRequests: 1000 });
  });

  it('tenants never share entries, even for byte-identical upstream requests', async () => {
    const cfg = demoConfig({ models: simModel(sim) });
    for (const t of cfg.tenants as Array<Record<string, unknown>>) t.prompt_policy = 'none';
    const gw = await startTestGateway(cfg);
    try {
      const before = upstreamCalls(sim);
      const body = chatBody('identical question');
      const a1 = await post(gw, body, ACME_KEY);
      const b1 = await post(gw, body, CLOSED_KEY);
      assert.equal(a1.cache, 'miss');
      assert.equal(b1.cache, 'miss', 'closed-ai does not see acme-corp entry');
      assert.equal(upstreamCalls(sim) - before, 2);
      const a2 = await post(gw, body, ACME_KEY);
      const b2 = await post(gw, body, CLOSED_KEY);
      assert.equal(a2.cache, 'hit');
      assert.equal(b2.cache, 'hit');
      assert.equal(a2.text, a1.text);
      assert.equal(b2.text, b1.text);
    } finally {
      await gw.close();
    }
  });

  it('entries expire after the TTL and the LRU evicts beyond max_entries', async () => {
    const gw = await startTestGateway(
      demoConfig({
        models: simModel(sim),
        cache: { l1: { max_entries: 2, ttl_seconds: 0.3 } },
      }),
    );
    try {
      const a = chatBody('a');
      assert.equal((await post(gw, a)).cache, 'miss');
      assert.equal((await post(gw, a)).cache, 'hit');
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await post(gw, a)).cache, 'miss', 'expired');
      await post(gw, chatBody('b'));
      await post(gw, chatBody('c'));
      assert.equal((await post(gw, a)).cache, 'miss', 'evicted by b and c');
      assert.ok((await metric(gw, 'portico_cache_evictions_total', 'tier="l1"')) >= 1);
    } finally {
      await gw.close();
    }
  });

  it('a tenant or model can turn the cache off', async () => {
    const cfg = demoConfig({ models: { ...simModel(sim) } });
    (cfg.tenants as Array<Record<string, unknown>>)[1]!.cache = { enabled: false };
    const gw = await startTestGateway(cfg);
    try {
      const body = chatBody('policy');
      await post(gw, body, CLOSED_KEY);
      assert.equal((await post(gw, body, CLOSED_KEY)).cache, 'bypass');
      await post(gw, body, ACME_KEY);
      assert.equal((await post(gw, body, ACME_KEY)).cache, 'hit');
    } finally {
      await gw.close();
    }
  });

  it('Redis down: the cache degrades to L1, requests are served, the metric says so', async () => {
    const gw = await startTestGateway(
      demoConfig({
        models: simModel(sim),
        cache: { l2: { enabled: true, url: 'redis://127.0.0.1:1/0', timeout_ms: 100 } },
      }),
    );
    try {
      const body = chatBody('redis is down');
      const r1 = await post(gw, body);
      const r2 = await post(gw, body);
      assert.equal(r1.status, 200);
      assert.equal(r1.cache, 'miss');
      assert.equal(r2.cache, 'hit');
      assert.equal(r2.tier, 'l1');
      assert.equal(await metric(gw, 'portico_cache_l2_up'), 0);
    } finally {
      await gw.close();
    }
  });
});

/**
 * Found in review (2026-12-07), each reproduced against the old code first: an A/B alias keyed by
 * the alias (one variant's answer served to the other's users), a stream stored without its usage
 * chunk (backends that send usage only when asked) replayed to a client that asked for it, and a
 * follower that got a 500 when the leader's client left during a retry's back-off.
 */
describe('response cache: variants, usage, abandoned leaders', () => {
  const split = [
    { model: 'va', weight: 1 },
    { model: 'vb', weight: 1 },
  ];
  let gw: TestGateway;
  let sim: TestSim;
  before(async () => {
    // Every answer a 503 with retry-after 2 s: a leader sleeps 2 s before its retry.
    sim = await startTestSim({
      sim: {
        mode: 'lorem',
        output_tokens: 4,
        faults: { error_rate: 1, error_status: 503, retry_after_s: 2 },
      },
    });
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          {
            id: 'acme-corp',
            allowed_models: ['ab', 'va', 'vb', 'local', 'flaky'],
            api_keys: [{ value: ACME_KEY }],
          },
        ],
        models: {
          va: { backends: [{ id: 'sim-a', provider: 'sim', sim: { mode: 'echo' } }] },
          vb: { backends: [{ id: 'sim-b', provider: 'sim', sim: { mode: 'lorem', output_tokens: 5 } }] },
          ab: { split },
          // In-process simulator: sends the usage chunk only when asked, as Anthropic and the engine do.
          local: {
            backends: [{ id: 'sim-local', provider: 'sim', sim: { mode: 'lorem', output_tokens: 6 } }],
          },
          flaky: {
            retry: { attempts: 2 },
            backends: [{ id: 'sim-503', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it('an A/B alias caches each variant under its own entry', async () => {
    const users: Record<string, string> = {};
    for (let i = 0; i < 200 && Object.keys(users).length < 2; i++) {
      const r = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ACME_KEY}`,
          'content-type': 'application/json',
          'x-portico-user': `u${i}`,
        },
        body: chatBody('which variant?', { model: 'ab', max_tokens: 10 }),
      });
      const variant = r.headers.get('x-portico-variant') ?? '';
      const text = ((await r.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]
        ?.message.content;
      assert.equal(r.status, 200);
      // Before: the second variant's first request was a hit on the first variant's entry.
      if (!(variant in users)) {
        assert.equal(r.headers.get('x-portico-cache'), 'miss', `${variant}: first request`);
        users[variant] = text ?? '';
      } else assert.equal(text, users[variant], `${variant}: its own entry`);
    }
    assert.deepEqual(Object.keys(users).sort(), ['va', 'vb']);
    assert.notEqual(users.va, users.vb);
  });

  it('a stream cached for a client that did not ask for usage still has it for one that does', async () => {
    const body = chatBody('usage shared?', { model: 'local', stream: true });
    const first = await post(gw, body);
    assert.equal(first.cache, 'miss');
    assert.doesNotMatch(first.text, /"usage":\{/, 'hidden from the client that did not ask');
    const second = await post(
      gw,
      chatBody('usage shared?', { model: 'local', stream: true, stream_options: { include_usage: true } }),
    );
    assert.equal(second.cache, 'hit');
    assert.match(second.text, /"usage":\{"prompt_tokens":\d+/, 'before: no usage chunk in the replay');
  });

  it("a follower keeps the call going when the leader's client leaves during a retry's back-off", async () => {
    const body = chatBody('leave during back-off', { model: 'flaky' });
    const calls = upstreamCalls(sim);
    const ac = new AbortController();
    const leader = abortable(gw, body, ac.signal);
    await new Promise((r) => setTimeout(r, 300));
    const follower = post(gw, body);
    await new Promise((r) => setTimeout(r, 300));
    ac.abort(); // the leader is asleep before its retry
    await leader;
    const f = await follower;
    // Before: 500 internal_error (the leader's AbortError was not seen as abandonment). Now the
    // call (the flight's, not the leader's) makes its retry for the follower, which gets the
    // backend's own answer (a 503 after the retry).
    assert.notEqual(f.status, 500, f.text);
    assert.equal(f.status, 503, f.text);
    assert.doesNotMatch(f.text, /internal_error/);
    assert.equal(upstreamCalls(sim) - calls, 2, "the leader's two attempts, none of the follower's own");
  });
});

/**
 * Found in review (2026-12-07): when a leader's client left, every waiting follower called upstream
 * itself — N followers, N upstream calls at once; then the first to wake took over with a second
 * call. Now the call belongs to the flight and goes on for the followers: one upstream call in all,
 * for answers and for streams.
 */
describe('response cache: followers of an abandoned leader keep its call', () => {
  let gw: TestGateway;
  let sim: TestSim;
  before(async () => {
    sim = await startTestSim({ sim: { mode: 'lorem', output_tokens: 6, ttft_ms: 400 } });
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', allowed_models: ['slow'], api_keys: [{ value: ACME_KEY }] }],
        models: {
          slow: { backends: [{ id: 'sim-slow', provider: 'openai', base_url: sim.baseURL, model: 'sim' }] },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  for (const stream of [false, true]) {
    it(`${stream ? 'streams' : 'answers'}: one upstream call for a leader that left and four followers`, async () => {
      const before = upstreamCalls(sim);
      const body = chatBody(`abandoned leader ${String(stream)}`, { model: 'slow', stream });
      const ac = new AbortController();
      const leader = abortable(gw, body, ac.signal);
      await new Promise((r) => setTimeout(r, 100));
      const followers = Array.from({ length: 4 }, () => post(gw, body));
      await new Promise((r) => setTimeout(r, 100));
      ac.abort(); // the leader's client leaves while the backend is still thinking
      await leader;
      const answers = await Promise.all(followers);
      for (const a of answers) assert.equal(a.status, 200, a.text);
      // Before: 5 (the leader's and one per follower), then 2 (the abandoned call and a takeover).
      assert.equal(upstreamCalls(sim) - before, 1, "the leader's call, kept for the followers");
      const tiers = answers.map((a) => `${a.cache}/${a.tier ?? ''}`);
      assert.deepEqual(tiers, ['hit/coalesced', 'hit/coalesced', 'hit/coalesced', 'hit/coalesced']);
      const content = (text: string): string =>
        stream
          ? text
              .split('\n')
              .filter((l) => l.startsWith('data: {'))
              .map(
                (l) =>
                  (JSON.parse(l.slice(6)) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]
                    ?.delta?.content ?? '',
              )
              .join('')
          : ((JSON.parse(text) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message
              .content ?? '');
      assert.equal(new Set(answers.map((a) => content(a.text))).size, 1, 'the same answer for all four');
    });
  }
});

describe('response cache: an answer from a fallback model is not stored', () => {
  // One OpenAI-compatible upstream serving both models; the primary answers 503 while `down`.
  let down = true;
  let upstream: Server;
  let gw: TestGateway;
  before(async () => {
    upstream = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const body = (raw ? JSON.parse(raw) : {}) as { model?: string; stream?: boolean };
        const model = String(body.model);
        if (model === 'primary-m' && down) {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'overloaded', type: 'server_error' } }));
          return;
        }
        const content = `answer from ${model}`;
        const usage = { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 };
        const base = { id: 'x', created: 1, model };
        if (body.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          const chunk = (c: unknown): string => `data: ${JSON.stringify(c)}\n\n`;
          res.write(
            chunk({
              ...base,
              object: 'chat.completion.chunk',
              choices: [{ index: 0, delta: { role: 'assistant', content }, finish_reason: null }],
            }),
          );
          res.write(
            chunk({
              ...base,
              object: 'chat.completion.chunk',
              choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
              usage,
            }),
          );
          res.end('data: [DONE]\n\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            ...base,
            object: 'chat.completion',
            choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
            usage,
          }),
        );
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    gw = await startTestGateway(
      demoConfig({
        models: {
          default: {
            retry: { attempts: 2, backoff_ms: 1, max_backoff_ms: 2 },
            backends: [{ id: 'primary', provider: 'openai', base_url: url, model: 'primary-m' }],
            fallbacks: ['backup'],
          },
          backup: { backends: [{ id: 'backup', provider: 'openai', base_url: url, model: 'backup-m' }] },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    upstream.closeAllConnections();
    upstream.close();
  });

  for (const stream of [false, true])
    it(`${stream ? 'streams' : 'answers'}: the primary's answer, not the fallback's, once it recovers`, async () => {
      down = true;
      const body = chatBody(`fallback ${stream ? 'stream' : 'unary'}`, stream ? { stream: true } : {});
      const degraded = await post(gw, body);
      assert.equal(degraded.status, 200);
      assert.equal(degraded.cache, 'miss');
      assert.match(degraded.text, /answer from backup-m/);
      down = false;
      const recovered = await post(gw, body);
      assert.equal(recovered.cache, 'miss', 'the fallback answer was not stored');
      assert.match(recovered.text, /answer from primary-m/);
      const again = await post(gw, body);
      assert.equal(again.cache, 'hit', "the primary's answer is stored");
      assert.match(again.text, /answer from primary-m/);
    });
});
