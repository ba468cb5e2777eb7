/**
 * `/v1/completions` takes prompts of token ids (review, 2026-12-08): `prompt: [1, 2, 3]` and
 * `[[1, 2], [3]]` are valid OpenAI input, and lm-evaluation-harness sends them by default; they
 * were refused with a 400. They now go as sent to OpenAI-compatible backends (here the simulator
 * over HTTP, which takes them as vLLM does), count one token per id for token limits, and are
 * refused with a 400 naming the limitation by the providers that take text only (Anthropic, the
 * built-in engine) and for tenants whose prompts are PII-redacted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
import { EngineApi } from '../../src/engine/provider.js';
import { countPrompt } from '../../src/tenancy/tokens.js';
import { isPorticoError } from '../../src/errors/portico-error.js';

const KEY = 'sk-token-prompts';
const TPM_KEY = 'sk-token-prompts-tpm';
const REDACTED_KEY = 'sk-token-prompts-redacted';

describe('completions: prompts of token ids', () => {
  let sim: TestSim;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    sim = await startTestSim({ sim: { mode: 'echo' } });
    const vllm = (prefix: string, balance?: string): Record<string, unknown> => ({
      backends: ['a', 'b'].map((id) => ({
        id: `${prefix}-${id}`,
        provider: 'vllm',
        base_url: sim.baseURL,
        model: 'sim',
      })),
      ...(balance ? { balance } : {}),
      health_check: { enabled: false },
    });
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          { id: 'lm-eval', prompt_policy: 'none', api_keys: [{ value: KEY }] },
          { id: 'tpm', api_keys: [{ value: TPM_KEY }], limits: { tokens_per_minute: 1000 } },
          { id: 'private', api_keys: [{ value: REDACTED_KEY }], redact_pii_upstream: true },
        ],
        models: {
          vllm: vllm('vllm'),
          sticky: vllm('sticky', 'prefix_affinity'),
          local: { backends: [{ id: 'sim-local', provider: 'sim', sim: { mode: 'echo' } }] },
          claude: {
            // Never reached: the refusal comes before any upstream call.
            backends: [{ id: 'claude', provider: 'anthropic', base_url: 'http://127.0.0.1:9', api_key: 'x' }],
            health_check: { enabled: false },
          },
        },
      }),
    );
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: KEY, maxRetries: 0 });
  });
  after(async () => {
    await gw?.close();
    await sim?.close();
  });

  const sent = (): unknown => {
    const r = sim.received.filter((x) => x.path === '/v1/completions').at(-1);
    return (r?.body as { prompt?: unknown } | undefined)?.prompt;
  };

  it('one list of ids and a list of lists go upstream as sent, answered one choice per prompt', async () => {
    for (const model of ['vllm', 'sticky']) {
      const one = await client.completions.create({ model, prompt: [101, 2023, 7], max_tokens: 8 });
      assert.deepEqual(sent(), [101, 2023, 7]);
      assert.equal(one.choices.length, 1);
      assert.equal(one.model, model);
      assert.ok((one.usage?.prompt_tokens ?? 0) > 0);

      const two = await client.completions.create({ model, prompt: [[1, 2], [3]], max_tokens: 8 });
      assert.deepEqual(sent(), [[1, 2], [3]]);
      assert.deepEqual(
        two.choices.map((c) => c.index),
        [0, 1],
      );
    }
  });

  it('streams too (pass-through), and the in-process simulator takes them', async () => {
    const stream = await client.completions.create({
      model: 'vllm',
      prompt: [5, 6, 7],
      max_tokens: 8,
      stream: true,
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    assert.deepEqual(sent(), [5, 6, 7]);
    assert.ok(text.length > 0);
    const local = await client.completions.create({ model: 'local', prompt: [[5, 6], [7]], max_tokens: 8 });
    assert.equal(local.choices.length, 2);
    assert.match(local.choices[0]?.text ?? '', /5 6/);
  });

  it('count one token per id for token limits', async () => {
    assert.equal(countPrompt([1, 2, 3]), 3);
    assert.equal(countPrompt([[1, 2], [3]]), 3);
    const res = await fetch(`${gw.baseURL}/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TPM_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'local',
        prompt: Array.from({ length: 40 }, (_, i) => i),
        max_tokens: 10,
      }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    // Charged up front: 40 prompt tokens + 10 for the answer.
    assert.equal(res.headers.get('x-ratelimit-remaining-tokens'), '950');
  });

  it('malformed prompts are 400s naming prompt', async () => {
    for (const prompt of [[], [1, 'a'], [[1], []], [-1], [1.5], [[1, 2], 'x'], ['a', 3], [2 ** 31], [null]]) {
      await assert.rejects(client.completions.create({ model: 'vllm', prompt: prompt as number[] }), (e) => {
        assert.ok(e instanceof OpenAI.APIError, String(e));
        assert.equal(e.status, 400, JSON.stringify(prompt));
        assert.equal((e.error as { param?: string }).param, 'prompt');
        return true;
      });
    }
  });

  it('text-only providers and PII-redacted tenants refuse them with a 400 that says why', async () => {
    await assert.rejects(client.completions.create({ model: 'claude', prompt: [1, 2, 3] }), (e) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 400);
      assert.equal((e.error as { param?: string }).param, 'prompt');
      assert.match(e.message, /Anthropic.*text prompts only.*token ids/);
      return true;
    });
    const redacted = new OpenAI({ baseURL: gw.baseURL, apiKey: REDACTED_KEY, maxRetries: 0 });
    await assert.rejects(redacted.completions.create({ model: 'local', prompt: [1, 2, 3] }), (e) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 400);
      assert.match(e.message, /PII-redacted.*token ids cannot be redacted/);
      return true;
    });
    // The engine (in the gateway and behind `portico engine`): refused before the model is asked.
    const api = new EngineApi(() => Promise.reject(new Error('no model loaded')));
    for (const stream of [false, true]) {
      const call = stream
        ? api.completionStream({ model: 'm', prompt: [[1], [2]] })
        : api.completion({ model: 'm', prompt: [1, 2] });
      await assert.rejects(call, (e) => {
        assert.ok(isPorticoError(e));
        assert.equal(e.code, 'invalid_request');
        assert.match(e.message, /built-in engine takes text prompts only/);
        return true;
      });
    }
  });
});
