/**
 * Reservations that bind the upstream (issue 15): for a tenant or key with a token quota or a
 * tokens/min limit, the answer's budget reserved at admission is also the cap sent upstream —
 * the model's max output when the request sets no max_tokens, less when the budget is nearly
 * spent — and an answer cut by it ends with finish_reason "length". 429s say what was used and
 * what is held by requests in flight. An embedded gateway releases the holds of its previous
 * process at start-up. Real servers on loopback: the gateway, the simulator over HTTP, a fake
 * Anthropic upstream; the official SDK as the client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startTestGateway, startTestSim, type TestGateway, type TestSim } from '../support/gateway.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { countMessages } from '../../src/tenancy/tokens.js';
import { createStateBackends } from '../../src/state/index.js';

const SYSTEM = 'You answer briefly.';
const USER = 'Tell me about quotas.';
/** The gateway's estimate of the prompt every request here sends. */
const PROMPT = countMessages([
  { role: 'system', content: SYSTEM },
  { role: 'user', content: USER },
]);

function tenant(id: string, extra: Record<string, unknown>): Record<string, unknown> {
  return { id, system_prompt: SYSTEM, api_keys: [{ value: `sk-${id}` }], ...extra };
}

function client(gw: TestGateway, id: string): OpenAI {
  return new OpenAI({ apiKey: `sk-${id}`, baseURL: gw.baseURL, maxRetries: 0 });
}

type Sent = { max_tokens?: number; max_completion_tokens?: number; messages?: unknown[] };

/** The body the simulator received for the last chat request. */
function lastSent(sim: TestSim): Sent {
  const chats = sim.received.filter((r) => r.path.startsWith('/v1/chat/completions'));
  return chats.at(-1)?.body as Sent;
}

async function ask(c: OpenAI, extra: Record<string, unknown> = {}) {
  return c.chat.completions.create({
    model: 'remote',
    messages: [{ role: 'user', content: USER }],
    ...extra,
  });
}

async function dayTally(
  gw: TestGateway,
  id: string,
): Promise<{ usedTokens: number; reservedTokens: number }> {
  const r = await fetch(`${gw.url}/admin/tenants/${id}`, {
    headers: { authorization: 'Bearer test-admin-token' },
  });
  const body = (await r.json()) as { usage: { day: { usedTokens: number; reservedTokens: number } } };
  return body.usage.day;
}

async function settled(gw: TestGateway, id: string): Promise<{ usedTokens: number; reservedTokens: number }> {
  for (let i = 0; i < 100; i++) {
    const t = await dayTally(gw, id);
    if (t.reservedTokens === 0) return t;
    await new Promise((r) => setTimeout(r, 20));
  }
  return dayTally(gw, id);
}

describe('reservations bind the upstream', () => {
  let sim: TestSim;
  let anthropic: FakeUpstream;
  let gw: TestGateway;

  before(async () => {
    sim = await startTestSim({ sim: { mode: 'lorem', output_tokens: 48 } });
    anthropic = await startFakeUpstream({
      protocol: 'anthropic',
      fixturesDir: fileURLToPath(new URL('../fixtures/providers/anthropic/', import.meta.url)),
    });
    const remote = (extra: Record<string, unknown> = {}) => ({
      backends: [
        {
          id: `http-sim-${Object.keys(extra).length}`,
          provider: 'openai',
          base_url: sim.baseURL,
          model: 'sim',
        },
      ],
      ...extra,
    });
    gw = await startTestGateway({
      server: { host: '127.0.0.1', port: 0 },
      logging: { level: 'silent' },
      admin: { token: 'test-admin-token' },
      state: { kind: 'memory' },
      admission: { default_output_tokens: 16, min_output_tokens: 8 },
      models: {
        remote: remote(),
        long: {
          backends: [{ id: 'http-sim-long', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
          max_output_tokens: 20,
        },
        slow: {
          backends: [
            { id: 'slow', provider: 'sim', sim: { mode: 'lorem', output_tokens: 8, ttft_ms: 60_000 } },
          ],
        },
        text: {
          backends: [
            {
              id: 'claude',
              provider: 'anthropic',
              base_url: anthropic.baseUrl,
              api_key: 'sk-ant-x',
              model: 'text',
              default_max_tokens: 300,
            },
          ],
        },
      },
      tenants: [
        tenant('free', {}),
        // A quota block with no limit in it (allowed by the schema): no budget, so nothing to bind.
        tenant('empty-quota', { quota: {} }),
        tenant('plenty', { quota: { daily_tokens: 100_000 } }),
        tenant('tight', { quota: { daily_tokens: PROMPT + 12 } }),
        tenant('asks-much', { quota: { daily_tokens: PROMPT + 25 } }),
        tenant('per-minute', { limits: { tokens_per_minute: PROMPT + 12 } }),
        tenant('busy', { quota: { daily_tokens: 3000 } }),
        tenant('key-quota', { api_keys: [{ value: 'sk-key-quota', quota: { daily_tokens: PROMPT + 10 } }] }),
      ],
    });
  });
  after(async () => {
    await gw.close();
    await sim.close();
    await anthropic.close();
  });

  it('a tenant without token limits: the request goes upstream as sent', async () => {
    const r = await ask(client(gw, 'free'));
    assert.equal(r.usage?.completion_tokens, 48);
    assert.equal(r.choices[0]?.finish_reason, 'stop');
    assert.equal(lastSent(sim).max_tokens, undefined, 'no cap added');
  });

  it('a quota with no limit in it binds nothing: the request goes upstream as sent', async () => {
    const r = await ask(client(gw, 'empty-quota'));
    assert.equal(r.usage?.completion_tokens, 48);
    assert.equal(lastSent(sim).max_tokens, undefined, 'no cap added');
  });

  it('without max_tokens: reserves the model max output and caps the upstream at it', async () => {
    const c = client(gw, 'plenty');
    // No max_output_tokens on the model, an OpenAI-compatible backend: admission.default_output_tokens.
    const r = await ask(c);
    assert.equal(lastSent(sim).max_tokens, 16);
    assert.equal(r.usage?.completion_tokens, 16);
    assert.equal(r.choices[0]?.finish_reason, 'length', 'an answer cut by the cap says so');
    // The model's own max_output_tokens.
    const l = await ask(c, { model: 'long' });
    assert.equal(lastSent(sim).max_tokens, 20);
    assert.equal(l.usage?.completion_tokens, 20);
    assert.equal(l.choices[0]?.finish_reason, 'length');
    // A client max_tokens within budget is sent unchanged, even above the model's default.
    const m = await ask(c, { max_tokens: 40 });
    assert.equal(lastSent(sim).max_tokens, 40);
    assert.equal(m.usage?.completion_tokens, 40);
  });

  it('streams are capped too: the last chunk says length', async () => {
    const stream = await client(gw, 'plenty').chat.completions.create({
      model: 'remote',
      messages: [{ role: 'user', content: USER }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let finish: string | null | undefined;
    let completion: number | undefined;
    for await (const chunk of stream) {
      const f = chunk.choices[0]?.finish_reason;
      if (f) finish = f;
      if (chunk.usage) completion = chunk.usage.completion_tokens;
    }
    assert.equal(lastSent(sim).max_tokens, 16);
    assert.equal(finish, 'length');
    assert.equal(completion, 16);
  });

  it('near the end of the budget the answer is capped at what is left, then refused with used and needed', async () => {
    const c = client(gw, 'tight');
    const r = await ask(c);
    // The quota leaves room for 12 answer tokens after the prompt (the model's default is 16).
    assert.equal(lastSent(sim).max_tokens, 12);
    assert.equal(r.usage?.completion_tokens, 12);
    assert.equal(r.choices[0]?.finish_reason, 'length');
    const t = await settled(gw, 'tight');
    assert.equal(t.usedTokens, (r.usage?.prompt_tokens ?? 0) + 12);
    assert.ok(t.usedTokens <= PROMPT + 12, `used ${t.usedTokens}`);
    // What is left cannot hold the prompt and the shortest answer (min_output_tokens: 8).
    assert.ok(PROMPT + 12 - t.usedTokens < PROMPT + 8);
    await assert.rejects(ask(c), (e: unknown) => {
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.code, 'insufficient_quota');
      assert.equal(e.headers?.get('x-should-retry'), 'false');
      assert.match(
        e.message,
        new RegExp(
          `^429 Tenant tight has used ${t.usedTokens} of its daily quota of ${PROMPT + 12} tokens; this request needs at least ${PROMPT + 8} \\(${PROMPT} for its prompt \\+ 8 for the shortest answer\\)\\. The quota resets at `,
        ),
      );
      return true;
    });
  });

  it('a max_tokens above the remaining budget is capped to it, not refused', async () => {
    const r = await ask(client(gw, 'asks-much'), { max_completion_tokens: 1000 });
    const sent = lastSent(sim);
    // The field the client used, capped at what is left after the prompt.
    assert.equal(sent.max_completion_tokens, 25);
    assert.equal(sent.max_tokens, undefined);
    assert.equal(r.usage?.completion_tokens, 25);
    assert.equal(r.choices[0]?.finish_reason, 'length');
    const t = await settled(gw, 'asks-much');
    assert.ok(t.usedTokens <= PROMPT + 25);
  });

  it('a tokens/min limit binds the answer the same way', async () => {
    const r = await ask(client(gw, 'per-minute'));
    assert.equal(lastSent(sim).max_tokens, 12, 'the window holds the prompt and 12 more');
    assert.equal(r.choices[0]?.finish_reason, 'length');
  });

  it("a key's quota binds the answer", async () => {
    const c = new OpenAI({ apiKey: 'sk-key-quota', baseURL: gw.baseURL, maxRetries: 0 });
    const r = await ask(c);
    assert.equal(lastSent(sim).max_tokens, 10);
    assert.equal(r.usage?.completion_tokens, 10);
  });

  it("Anthropic backends get the cap as their max_tokens (default: the backend's default_max_tokens)", async () => {
    await ask(client(gw, 'plenty'), { model: 'text' });
    const sent = anthropic.requests.at(-1)?.body as { max_tokens?: number };
    assert.equal(sent.max_tokens, 300);
    await ask(client(gw, 'plenty'), { model: 'text', max_tokens: 77 });
    assert.equal((anthropic.requests.at(-1)?.body as { max_tokens?: number }).max_tokens, 77);
  });

  it('a 429 says what was used and what requests in flight hold, apart', async () => {
    const c = client(gw, 'busy');
    const controller = new AbortController();
    // Requests that hang at the backend, each holding its prompt + 290 tokens: 10 hold all 3,000.
    const holding = Array.from({ length: 10 }, () =>
      c.chat.completions
        .create(
          { model: 'slow', messages: [{ role: 'user', content: USER }], max_tokens: 290 },
          { signal: controller.signal },
        )
        .catch(() => undefined),
    );
    try {
      let t = await dayTally(gw, 'busy');
      for (let i = 0; i < 200 && t.reservedTokens < 3000 - PROMPT - 8 + 1; i++) {
        await new Promise((r) => setTimeout(r, 20));
        t = await dayTally(gw, 'busy');
      }
      assert.equal(t.usedTokens, 0);
      await assert.rejects(ask(c, { max_tokens: 100 }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.RateLimitError);
        assert.equal(e.code, 'insufficient_quota');
        assert.match(
          e.message,
          new RegExp(
            `^429 Tenant busy has used 0 of its daily quota of 3,000 tokens, and ${t.reservedTokens.toLocaleString('en-US')} more are held by requests in flight; this request needs at least ${PROMPT + 8} `,
          ),
        );
        return true;
      });
    } finally {
      controller.abort();
      await Promise.all(holding);
    }
  });
});

describe('embedded: a restarted gateway releases the reservations of its previous process', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-reservations-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds left by a killed process are released at start-up, not after a lease', async () => {
    // What a gateway killed mid-request leaves in its SQLite store: holds owned by it.
    const before = await createStateBackends({ kind: 'embedded', data_dir: dir });
    const scopes = [{ name: 'tenant', limits: { day: { tokens: 3000 } } }];
    const held = await before.quotas.reserve({
      tenant: 'budget',
      scopes,
      tokens: 2950,
      owner: 'host:4242:deadbeef',
      ttlMs: 3_600_000,
    });
    assert.ok(held.ok);
    await before.close();

    const gw = await startTestGateway({
      server: { host: '127.0.0.1', port: 0 },
      logging: { level: 'silent' },
      admin: { token: 'test-admin-token' },
      state: { kind: 'embedded', data_dir: dir },
      models: { remote: { backends: [{ id: 'sim', provider: 'sim', sim: { output_tokens: 8 } }] } },
      tenants: [tenant('budget', { quota: { daily_tokens: 3000 } })],
    });
    try {
      assert.deepEqual(await dayTally(gw, 'budget'), {
        ...(await dayTally(gw, 'budget')),
        usedTokens: 0,
        reservedTokens: 0,
      });
      const r = await ask(client(gw, 'budget'), { max_tokens: 100 });
      assert.equal(r.choices[0]?.finish_reason, 'stop');
    } finally {
      await gw.close();
    }
  });
});
