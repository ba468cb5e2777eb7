/**
 * The official `openai` SDK gets correct answers from an Anthropic-protocol backend through
 * Portico. Chain (all real, on loopback): openai SDK -> gateway (/v1/chat/completions, tenant key,
 * pipeline) -> backend `provider: anthropic` (the Anthropic adapter, undici pool) -> fake Anthropic
 * upstream replaying test/fixtures/providers/anthropic. The fixture is picked by the upstream model
 * name, so each alias maps to a backend model of the same name.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';

const KEY = 'sk-openai-sdk-tenant';
const MODELS = [
  'text',
  'tool-call',
  'stream-tool-call',
  'stream-text',
  'error-rate-limit',
  'error-overloaded',
  'error-not-found',
  'error-auth',
  'error-invalid-request',
];

describe('openai SDK -> Portico -> provider: anthropic -> fake Anthropic upstream', () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeUpstream({
      protocol: 'anthropic',
      fixturesDir: fileURLToPath(new URL('../fixtures/providers/anthropic/', import.meta.url)),
    });
    const models: Record<string, unknown> = {};
    for (const m of MODELS)
      models[m] = {
        backends: [
          {
            provider: 'anthropic',
            base_url: fake.baseUrl,
            api_key: 'sk-ant-x',
            model: m,
            default_max_tokens: 512,
            timeout_ms: 5000,
          },
        ],
        health_check: { enabled: false }, // the test reads the last request the fake upstream saw
      };
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'openai-client', prompt_policy: 'none', api_keys: [{ value: KEY }] }],
        models,
      }),
    );
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: KEY, maxRetries: 0, timeout: 10_000 });
  });

  after(async () => {
    await gw.close();
    await fake.close();
  });

  it('the upstream gets an Anthropic request: x-api-key, max_tokens from config', async () => {
    await client.chat.completions.create({
      model: 'text',
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    const sent = fake.requests.at(-1);
    assert.ok(sent);
    assert.equal(sent.headers['x-api-key'], 'sk-ant-x');
    assert.equal((sent.body as { max_tokens?: number }).max_tokens, 512);
  });

  const tools: OpenAI.ChatCompletionTool[] = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
      },
    },
  ];

  it('text with usage', async () => {
    const r = await client.chat.completions.create({
      model: 'text',
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    assert.equal(r.choices[0]?.message.content, 'Hello! How can I help you today?');
    assert.equal(r.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(r.usage, { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 });
  });

  it('tool call (not streamed)', async () => {
    const r = await client.chat.completions.create({
      model: 'tool-call',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools,
    });
    const call = r.choices[0]?.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { location: 'Paris', unit: 'celsius' });
    assert.equal(r.choices[0]?.finish_reason, 'tool_calls');
  });

  it('streamed tool call reassembles with the SDK helper, usage at the end', async () => {
    const s = client.chat.completions.stream({
      model: 'stream-tool-call',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools,
      stream_options: { include_usage: true },
    });
    const final = await s.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.equal(call.id, 'toolu_01T1x1fJ34qAmk2tNTrN7Up6');
    assert.deepEqual(JSON.parse(call.function.arguments), { location: 'Paris', unit: 'celsius' });
    assert.equal(final.choices[0]?.message.content, "I'll check the weather in Paris.");
    assert.deepEqual(final.usage, { prompt_tokens: 50, completion_tokens: 20, total_tokens: 70 });
  });

  it('streamed text', async () => {
    const s = await client.chat.completions.create({
      model: 'stream-text',
      messages: [{ role: 'user', content: 'Say hello.' }],
      stream: true,
    });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Hello! How can I help you today?');
  });

  const errors: Array<[string, new (...args: never[]) => InstanceType<typeof OpenAI.APIError>, number]> = [
    ['error-rate-limit', OpenAI.RateLimitError, 429],
    ['error-overloaded', OpenAI.InternalServerError, 503],
    ['error-not-found', OpenAI.NotFoundError, 404],
    ['error-auth', OpenAI.InternalServerError, 502],
    ['error-invalid-request', OpenAI.BadRequestError, 400],
  ];
  for (const [model, cls, status] of errors) {
    it(`${model} -> ${status}`, async () => {
      await assert.rejects(
        client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
        (e) => {
          assert.ok(e instanceof cls, String(e));
          assert.equal(e.status, status);
          if (status === 429) assert.equal(e.headers?.get('retry-after'), '7');
          return true;
        },
      );
    });
  }
});
