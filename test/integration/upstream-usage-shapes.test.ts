/**
 * Upstreams report usage in many shapes, and accounting must never take a count that is no number
 * (review, 2026-12-08): vLLM's and Jina's rerank answer `usage: {total_tokens}` only, which made
 * the quota's usedTokens NaN (the daily_tokens quota stopped being enforced; a tokens/min window
 * became NaN and refused the tenant every later request); an embeddings answer without `usage`,
 * or a rerank with Cohere's `meta` only, was a 500 after the upstream had done the work; a chat
 * answer with half a usage billed NaN too. One normaliser (providers/usage.ts) now reads every
 * route's usage: counts it leaves out are the gateway's own estimate, and the record says so.
 *
 * The upstream is a small OpenAI-compatible server on loopback; the usage shape it answers with
 * is chosen by the model name the gateway sends it (each alias's backend names one).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { countEmbeddingInput, countText } from '../../src/tenancy/tokens.js';

const ADMIN = { authorization: 'Bearer test-admin-token' };
const QUOTA_KEY = 'sk-usage-quota';
const TPM_KEY = 'sk-usage-tpm';
const FREE_KEY = 'sk-usage-free';
const ANSWER = 'the answer has a few words in it';

/** The usage each upstream model name answers with (undefined: no `usage` field). */
const USAGE: Record<string, unknown> = {
  'rr-total': { total_tokens: 42 },
  'rr-meta': undefined,
  'rr-meta-tokens': undefined,
  'emb-meta': undefined,
  'emb-meta-tokens': undefined,
  'emb-none': undefined,
  'chat-prompt-only': { prompt_tokens: 9 },
  'chat-garbage': { prompt_tokens: 'nine', completion_tokens: -3, total_tokens: null },
};

function reply(path: string, body: Record<string, unknown>): unknown {
  const model = String(body.model);
  const usage = USAGE[model];
  const withUsage = usage === undefined ? {} : { usage };
  if (path.endsWith('/rerank')) {
    const docs = body.documents as string[];
    return {
      id: 'rr-1',
      model,
      results: docs.map((_, index) => ({ index, relevance_score: 1 - index / 10 })),
      // Cohere's shape: billed units under `meta`, no usage (search units only, or input tokens too).
      ...(model === 'rr-meta'
        ? { meta: { billed_units: { search_units: 1 } } }
        : model === 'rr-meta-tokens'
          ? { meta: { billed_units: { input_tokens: 37, search_units: 1 } } }
          : withUsage),
    };
  }
  if (path.endsWith('/embeddings')) {
    const input = Array.isArray(body.input) ? body.input : [body.input];
    // Cohere's embed: the input tokens under `meta.billed_units` (or `meta.tokens`), 23 per input.
    const meta =
      model === 'emb-meta'
        ? { meta: { billed_units: { input_tokens: 23 * input.length } } }
        : model === 'emb-meta-tokens'
          ? { meta: { tokens: { input_tokens: 23 * input.length } } }
          : {};
    return {
      object: 'list',
      model,
      data: input.map((_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2] })),
      ...withUsage,
      ...meta,
    };
  }
  return {
    id: 'chat-1',
    object: 'chat.completion',
    created: 1,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finish_reason: 'stop' }],
    ...withUsage,
  };
}

interface RequestRecord {
  status: number;
  tokens_in: number;
  tokens_out: number;
  tokens_estimated: boolean;
}

describe('upstream usage shapes: accounting takes finite counts from every route', () => {
  let up: http.Server;
  let gw: TestGateway;

  before(async () => {
    up = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(raw || '{}') as Record<string, unknown>;
        if (body.stream === true) {
          // The answer in two chunks, then a usage chunk in the model's shape.
          res.setHeader('content-type', 'text/event-stream');
          const chunk = (extra: Record<string, unknown>): string =>
            `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: body.model, ...extra })}\n\n`;
          const words = [ANSWER.slice(0, 10), ANSWER.slice(10)];
          for (const w of words)
            res.write(chunk({ choices: [{ index: 0, delta: { content: w }, finish_reason: null }] }));
          res.end(chunk({ choices: [], usage: USAGE[String(body.model)] }) + 'data: [DONE]\n\n');
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(reply(req.url ?? '', body)));
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(up.address() as { port: number }).port}/v1`;
    const backend = (model: string, provider = 'openai'): Record<string, unknown> => ({
      backends: [
        { id: model, provider, base_url: base, model, ...(provider === 'openai' ? { api_key: 'x' } : {}) },
      ],
      health_check: { enabled: false },
      retry: { attempts: 1 },
    });
    const tenant = (id: string, key: string, extra: Record<string, unknown>): Record<string, unknown> => ({
      id,
      prompt_policy: 'none',
      api_keys: [{ value: key }],
      ...extra,
    });
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          tenant('quota', QUOTA_KEY, { quota: { daily_tokens: 200 } }),
          tenant('tpm', TPM_KEY, { limits: { tokens_per_minute: 200 } }),
          tenant('free', FREE_KEY, {}),
        ],
        models: {
          default: { backends: [{ id: 'sim', provider: 'sim', sim: { mode: 'echo' } }] },
          'rr-total': backend('rr-total', 'vllm'),
          'rr-meta': backend('rr-meta', 'vllm'),
          'rr-meta-tokens': backend('rr-meta-tokens', 'vllm'),
          'emb-meta': { ...backend('emb-meta'), embeddings_batch_size: 2 },
          'emb-meta-tokens': backend('emb-meta-tokens'),
          'emb-none': backend('emb-none'),
          'chat-prompt-only': backend('chat-prompt-only'),
          'chat-garbage': backend('chat-garbage'),
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await new Promise((r) => up.close(r));
  });

  const post = (key: string, path: string, body: unknown): Promise<Response> =>
    fetch(`${gw.baseURL}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** The finished request's record (finishing may run just after the response). */
  async function recordOf(res: Response): Promise<RequestRecord> {
    const id = res.headers.get('x-request-id') ?? '';
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${gw.url}/admin/requests/${id}`, { headers: ADMIN });
      if (r.status === 200) return (await r.json()) as RequestRecord;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no record of ${id}`);
  }

  /** The tenant's quota usage today, once nothing is held any more. */
  async function usedToday(tenant: string): Promise<number | null> {
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${gw.url}/admin/tenants/${tenant}`, { headers: ADMIN });
      const day = (
        (await r.json()) as { usage: { day: { usedTokens: number | null; reservedTokens: number | null } } }
      ).usage.day;
      if (day.reservedTokens === 0 || day.reservedTokens === null) return day.usedTokens;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('reservations not settled');
  }

  const rerank = (key: string, model: string): Promise<Response> =>
    post(key, '/rerank', { model, query: 'which one', documents: ['first document', 'second one'] });

  it('rerank usage {total_tokens} only (vLLM, Jina): billed as its input; the daily quota stays a number and holds', async () => {
    const res = await rerank(QUOTA_KEY, 'rr-total');
    assert.equal(res.status, 200);
    const rec = await recordOf(res);
    assert.deepEqual([rec.tokens_in, rec.tokens_out, rec.tokens_estimated], [42, 0, false]);
    assert.equal(await usedToday('quota'), 42, 'usedTokens is a number (was NaN: null in JSON)');
    // 158 tokens are left today: chats of ~60 tokens each run out of them after two or three.
    let served = 0;
    for (let i = 0; i < 10; i++) {
      const chat = await post(QUOTA_KEY, '/chat/completions', {
        model: 'default',
        messages: [{ role: 'user', content: 'word '.repeat(40) }],
        max_tokens: 20,
      });
      await chat.text();
      if (chat.status === 200) served++;
      else assert.equal(chat.status, 429);
    }
    assert.ok(served >= 2 && served <= 3, `${served} chats served on a 200-token quota`);
  });

  it('rerank usage {total_tokens} only does not lock a tokens/min tenant out', async () => {
    assert.equal((await rerank(TPM_KEY, 'rr-total')).status, 200);
    const chat = await post(TPM_KEY, '/chat/completions', {
      model: 'default',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 20,
    });
    assert.equal(chat.status, 200, await chat.text());
  });

  it("rerank with Cohere's `meta` and no usage: answered, billed the gateway's count, marked estimated", async () => {
    const res = await rerank(FREE_KEY, 'rr-meta');
    assert.equal(res.status, 200, await res.clone().text());
    const rec = await recordOf(res);
    const expected = countText('which one') + countText('first document') + countText('second one');
    assert.deepEqual([rec.tokens_in, rec.tokens_out, rec.tokens_estimated], [expected, 0, true]);
  });

  it("rerank with Cohere's `meta.billed_units.input_tokens`: billed that count, not an estimate", async () => {
    const res = await rerank(FREE_KEY, 'rr-meta-tokens');
    assert.equal(res.status, 200, await res.clone().text());
    const rec = await recordOf(res);
    assert.deepEqual([rec.tokens_in, rec.tokens_out, rec.tokens_estimated], [37, 0, false]);
  });

  it("embeddings with Cohere's `meta` input tokens: billed that count, batched or not", async () => {
    // emb-meta: `meta.billed_units`, batches of 2 (3 inputs: two upstream calls, summed).
    // emb-meta-tokens: `meta.tokens`, one call.
    for (const [model, input] of [
      ['emb-meta', ['a', 'b', 'c']],
      ['emb-meta', 'one input'],
      ['emb-meta-tokens', ['a', 'b']],
    ] as const) {
      const res = await post(FREE_KEY, '/embeddings', { model, input, encoding_format: 'float' });
      assert.equal(res.status, 200, await res.clone().text());
      const rec = await recordOf(res);
      const n = Array.isArray(input) ? input.length : 1;
      assert.deepEqual(
        [rec.tokens_in, rec.tokens_out, rec.tokens_estimated],
        [23 * n, 0, false],
        `${model} ${JSON.stringify(input)}`,
      );
    }
  });

  it("embeddings without usage: answered, billed the gateway's count, marked estimated", async () => {
    const input = ['hello world', 'another input text'];
    const res = await post(FREE_KEY, '/embeddings', { model: 'emb-none', input, encoding_format: 'float' });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.clone().json()) as { data: unknown[] }).data.length, 2);
    const rec = await recordOf(res);
    assert.deepEqual(
      [rec.tokens_in, rec.tokens_out, rec.tokens_estimated],
      [countEmbeddingInput(input), 0, true],
    );
  });

  it('chat usage without completion_tokens: the prompt as reported, the output counted, marked estimated', async () => {
    const res = await post(FREE_KEY, '/chat/completions', {
      model: 'chat-prompt-only',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(res.status, 200);
    const rec = await recordOf(res);
    assert.deepEqual([rec.tokens_in, rec.tokens_out, rec.tokens_estimated], [9, countText(ANSWER), true]);
  });

  it('chat usage whose counts are no numbers: billed as if it had none (streamed or not), never NaN', async () => {
    for (const stream of [false, true]) {
      const res = await post(TPM_KEY, '/chat/completions', {
        model: 'chat-garbage',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 20,
        stream,
      });
      assert.equal(res.status, 200);
      await res.text();
      const rec = await recordOf(res);
      assert.equal(rec.tokens_estimated, true, `stream: ${stream}`);
      assert.ok(Number.isInteger(rec.tokens_in) && rec.tokens_in > 0, JSON.stringify(rec));
      assert.equal(rec.tokens_out, countText(ANSWER), `stream: ${stream}`);
    }
    // The tokens/min window still takes requests.
    const chat = await post(TPM_KEY, '/chat/completions', {
      model: 'default',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5,
    });
    assert.equal(chat.status, 200, await chat.text());
  });
});
