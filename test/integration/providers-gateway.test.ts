/**
 * Provider presets and the embeddings/rerank paths through a running gateway with the simulator
 * over HTTP as the upstream: one-line preset backends (auth header, supported endpoints),
 * embeddings split into upstream batches and reassembled in order (float and the SDK's default
 * base64), rerank routed and accounted like chat, and preset config errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { buildConfig } from '../../src/config/load.js';
import {
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';

const KEY = 'sk-providers-tenant';
const ADMIN = { authorization: 'Bearer test-admin-token' };

describe('provider presets, embeddings batching and rerank through the gateway', () => {
  let sim: TestSim;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    sim = await startTestSim({ sim: { embedding_dimensions: 8 }, recordRequests: 200 });
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'prov', prompt_policy: 'none', api_keys: [{ value: KEY }] }],
        models: {
          embed: {
            embeddings_batch_size: 2,
            backends: [{ provider: 'vllm', base_url: sim.baseURL, model: 'sim' }],
          },
          rank: { backends: [{ provider: 'llamacpp', base_url: sim.baseURL, model: 'sim' }] },
          routed: {
            backends: [
              { provider: 'openrouter', base_url: sim.baseURL, model: 'sim', api_key: 'sk-or-test' },
            ],
          },
        },
      }),
    );
    client = new OpenAI({ apiKey: KEY, baseURL: gw.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  const calls = (path: string): number => sim.received.filter((r) => r.path === path).length;

  it('embeddings: 5 inputs with batch size 2 -> 3 upstream calls, reassembled in order', async () => {
    const inputs = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
    const before = calls('/v1/embeddings');
    const batched = await client.embeddings.create({ model: 'embed', input: inputs });
    assert.equal(calls('/v1/embeddings') - before, 3);
    assert.deepEqual(
      batched.data.map((d) => d.index),
      [0, 1, 2, 3, 4],
    );
    // Each vector equals the one for that input asked alone (SDK default: base64 on the wire).
    for (const [i, text] of inputs.entries()) {
      const single = await client.embeddings.create({ model: 'embed', input: text });
      assert.deepEqual(batched.data[i]?.embedding, single.data[0]?.embedding, `input ${i}`);
    }
    // float on the wire carries float64; base64 carries float32: equal to float32 precision.
    const floats = await client.embeddings.create({
      model: 'embed',
      input: inputs,
      encoding_format: 'float',
    });
    floats.data.forEach((d, i) =>
      d.embedding.forEach((x, j) =>
        assert.ok(Math.abs(x - (batched.data[i]?.embedding[j] ?? NaN)) < 1e-6, `input ${i} dim ${j}`),
      ),
    );
    const singles = await Promise.all(
      inputs.map((t) => client.embeddings.create({ model: 'embed', input: t })),
    );
    assert.equal(
      batched.usage.prompt_tokens,
      singles.reduce((n, s) => n + s.usage.prompt_tokens, 0),
    );
  });

  it('rerank: scored, sorted results through a preset backend, counted in usage', async () => {
    const res = await fetch(`${gw.baseURL}/rerank`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'rank',
        query: 'what is a gateway',
        documents: ['a gateway is a front door', 'bananas are yellow', 'llm gateway routing'],
        top_n: 2,
        return_documents: true,
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
      usage: { prompt_tokens: number };
    };
    assert.equal(body.results.length, 2);
    assert.ok((body.results[0]?.relevance_score ?? 0) >= (body.results[1]?.relevance_score ?? 0));
    assert.ok(body.usage.prompt_tokens > 0);
    const usage = (await (
      await fetch(`${gw.url}/admin/usage?tenant=prov&group_by=model`, { headers: ADMIN })
    ).json()) as {
      data: Array<{ group: string; requests: number; tokens_in: number }>;
    };
    const row = usage.data.find((r) => r.group === 'rank');
    assert.ok(row && row.requests === 1 && row.tokens_in === body.usage.prompt_tokens, JSON.stringify(usage));
  });

  it('a one-line openrouter backend sends its key as Bearer; it has no embeddings (501)', async () => {
    const r = await client.chat.completions.create({
      model: 'routed',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.ok(r.choices[0]?.message.content);
    const sent = sim.received.filter((x) => x.path === '/v1/chat/completions').at(-1);
    assert.equal(sent?.headers.authorization, 'Bearer sk-or-test');
    await assert.rejects(client.embeddings.create({ model: 'routed', input: 'x' }), (e) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 501);
      assert.equal((e.error as { code?: string }).code, 'unsupported_operation');
      return true;
    });
  });

  it('rerank on a model whose backends cannot: the 501 names the models of the tenant that can', async () => {
    const res = await fetch(`${gw.baseURL}/rerank`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'routed', query: 'q', documents: ['a', 'b'] }),
    });
    assert.equal(res.status, 501);
    const e = ((await res.json()) as { error: { code: string; message: string } }).error;
    assert.equal(e.code, 'unsupported_operation');
    assert.match(e.message, /does not serve rerank/);
    assert.match(
      e.message,
      /Model "routed" cannot rerank\. Send it to a model of yours that can: embed, rank\.$/,
    );
  });

  it('config: presets that need a key say so; unknown providers list the valid ones', async () => {
    await assert.rejects(
      buildConfig({ models: { m: { backends: [{ provider: 'together', model: 'x' }] } } }, { env: {} }),
      /api_key/,
    );
    await assert.rejects(
      buildConfig({ models: { m: { backends: [{ provider: 'tgi', model: 'x' }] } } }, { env: {} }),
      /provider/,
    );
  });
});

describe('rerank on a model whose fallback can (the demo: the engine, with the simulator as fallback)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 't', allowed_models: ['default'], api_keys: [{ value: KEY }] }],
        models: {
          default: {
            backends: [
              { provider: 'openrouter', base_url: 'http://127.0.0.1:1/v1', model: 'x', api_key: 'k' },
            ],
            fallbacks: ['sim'],
          },
          sim: { backends: [{ provider: 'sim' }] },
        },
      }),
    );
  });
  after(() => gw.close());

  it('the 501 says the fallback can rerank and what the operator can do', async () => {
    const res = await fetch(`${gw.baseURL}/rerank`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', query: 'q', documents: ['a', 'b'] }),
    });
    assert.equal(res.status, 501);
    const e = ((await res.json()) as { error: { message: string } }).error;
    assert.match(
      e.message,
      /Model "default" cannot rerank\. Its fallback "sim" can, but fallbacks are not tried for an operation a backend lacks: ask your Portico operator to allow "sim" for your tenant, or to give "default" a backend that reranks\.$/,
    );
  });
});
