/**
 * The official `openai` SDK as the client against a running gateway: chat, streaming with usage,
 * tools passthrough, completions, embeddings (float and the SDK's default base64), models, and the
 * SDK's error classes for bad key, unknown model and bad input. Backends: the in-process simulator
 * and an HTTP simulator behind the OpenAI-compatible adapter.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  ACME_KEY,
  ACME_PROMPT,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' } },
      required: ['city'],
    },
  },
};

describe('openai SDK against Portico', () => {
  let sim: TestSim;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    sim = await startTestSim({ sim: { mode: 'lorem', output_tokens: 20 } });
    gw = await startTestGateway(
      demoConfig({
        models: {
          default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] },
          remote: {
            backends: [{ id: 'http-sim', provider: 'openai', base_url: sim.baseURL, model: 'sim-model' }],
          },
        },
        tenants: [
          {
            id: 'acme-corp',
            system_prompt: ACME_PROMPT,
            allowed_models: ['default', 'remote'],
            api_keys: [{ value: ACME_KEY }],
          },
        ],
      }),
    );
    client = new OpenAI({ apiKey: ACME_KEY, baseURL: gw.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  for (const model of ['default', 'remote']) {
    it(`chat completion (${model})`, async () => {
      const res = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'Hello there' }],
      });
      assert.equal(res.object, 'chat.completion');
      assert.equal(res.choices[0]?.message.role, 'assistant');
      assert.ok((res.choices[0]?.message.content ?? '').length > 0);
      assert.ok(res.usage && res.usage.prompt_tokens > 0 && res.usage.completion_tokens > 0);
      assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
    });

    it(`streaming with usage equals the non-streamed answer (${model})`, async () => {
      const params = {
        model,
        messages: [{ role: 'user' as const, content: 'Stream me an answer' }],
        max_tokens: 12,
      };
      const whole = await client.chat.completions.create(params);
      const stream = await client.chat.completions.create({
        ...params,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined;
      let finish: string | null = null;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.ok(chunks > 2, 'several chunks');
      assert.equal(text, whole.choices[0]?.message.content);
      assert.equal(finish, whole.choices[0]?.finish_reason);
      assert.deepEqual(usage, whole.usage);
    });

    it(`stream without include_usage has no usage chunk (${model})`, async () => {
      const stream = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      for await (const chunk of stream) {
        assert.equal(chunk.usage ?? undefined, undefined);
        assert.ok(chunk.choices.length > 0);
      }
    });

    it(`tools pass through: tool call, streamed tool call fragments reassemble (${model})`, async () => {
      const params = {
        model,
        messages: [{ role: 'user' as const, content: 'What is the weather in Paris?' }],
        tools: [weatherTool],
        tool_choice: 'required' as const,
      };
      const res = await client.chat.completions.create(params);
      const call = res.choices[0]?.message.tool_calls?.[0];
      assert.equal(res.choices[0]?.finish_reason, 'tool_calls');
      assert.ok(call && call.type === 'function');
      assert.equal(call.function.name, 'get_weather');
      const args = JSON.parse(call.function.arguments) as { city: string; days: number };
      assert.equal(typeof args.city, 'string');

      const stream = await client.chat.completions.create({ ...params, stream: true });
      let streamedArgs = '';
      let name = '';
      for await (const chunk of stream) {
        const tc = chunk.choices[0]?.delta.tool_calls?.[0];
        if (tc?.function?.name) name = tc.function.name;
        streamedArgs += tc?.function?.arguments ?? '';
      }
      assert.equal(name, 'get_weather');
      assert.deepEqual(JSON.parse(streamedArgs), args);
    });

    it(`embeddings: float and the SDK's default base64 decode to the same vector (${model})`, async () => {
      const asFloat = await client.embeddings.create({
        model,
        input: ['alpha beta', 'gamma'],
        encoding_format: 'float',
      });
      const asDefault = await client.embeddings.create({ model, input: ['alpha beta', 'gamma'] });
      assert.equal(asFloat.data.length, 2);
      assert.equal(asDefault.data.length, 2);
      const a = asFloat.data[0]?.embedding as number[];
      const b = asDefault.data[0]?.embedding as number[];
      assert.ok(Array.isArray(b), 'SDK decoded base64 into numbers');
      assert.equal(a.length, b.length);
      a.forEach((x, i) => assert.ok(Math.abs(x - (b[i] as number)) < 1e-6));
      assert.ok(asFloat.usage.prompt_tokens > 0);
    });

    it(`legacy completions, streamed and not (${model})`, async () => {
      const res = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5 });
      assert.equal(res.object, 'text_completion');
      assert.ok((res.choices[0]?.text ?? '').length > 0);
      const stream = await client.completions.create({
        model,
        prompt: 'Once upon a time',
        max_tokens: 5,
        stream: true,
      });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.text ?? '';
      assert.equal(text, res.choices[0]?.text);
    });
  }

  it("lists only the tenant's models", async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id).sort(), ['default', 'remote']);
  });

  it('the tenant system prompt reaches the backend first', async () => {
    const res = await client.chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'Which approach?' }],
    });
    const text = res.choices[0]?.message.content ?? '';
    assert.ok(text.startsWith(`[system] ${ACME_PROMPT}`), text);
    assert.ok(text.includes('[user] Which approach?'));
  });

  it('bad key -> AuthenticationError (401)', async () => {
    const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: gw.baseURL, maxRetries: 0 });
    await assert.rejects(
      bad.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.AuthenticationError);
        assert.equal(e.status, 401);
        assert.equal(e.code, 'invalid_api_key');
        return true;
      },
    );
  });

  it('unknown model -> NotFoundError (404)', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.equal(e.code, 'model_not_found');
        assert.equal(e.param, 'model');
        return true;
      },
    );
  });

  it('bad input -> BadRequestError (400) naming the field', async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: 'default',
        messages: [{ role: 'user', content: 'x' }],
        temperature: 7,
      }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.param, 'temperature');
        return true;
      },
    );
    await assert.rejects(client.chat.completions.create({ model: 'default', messages: [] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.param, 'messages');
      return true;
    });
  });
});
