/**
 * The official @anthropic-ai/sdk against Portico's `POST /v1/messages` with an OpenAI-compatible
 * backend. Chain (all real, on loopback): Anthropic SDK -> gateway (tenant key, pipeline, inbound
 * translation) -> OpenAI-compatible adapter -> fake OpenAI upstream replaying
 * test/fixtures/providers/openai. The fixture is picked by the upstream model name, so each model
 * alias below maps to a backend model of the same name.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { assertValidAnthropicStream, type SseLike } from '../support/anthropic-stream-validator.js';

const KEY = 'sk-anthropic-sdk-tenant';
const MODELS = [
  'text',
  'tool-call',
  'tool-result',
  'stream-text',
  'stream-tool-call',
  'error-rate-limit',
  'stream-error',
];

describe('@anthropic-ai/sdk -> Portico /v1/messages -> OpenAI-compatible backend', () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  let client: Anthropic;

  before(async () => {
    fake = await startFakeUpstream({
      protocol: 'openai',
      fixturesDir: fileURLToPath(new URL('../fixtures/providers/openai/', import.meta.url)),
    });
    const models: Record<string, unknown> = {};
    for (const m of MODELS)
      models[m] = {
        backends: [{ provider: 'openai', base_url: fake.baseUrl, model: m, timeout_ms: 5000 }],
        health_check: { enabled: false }, // the test reads the last request the fake upstream saw
      };
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'anthropic-client', prompt_policy: 'none', api_keys: [{ value: KEY }] }],
        models,
      }),
    );
    client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0, timeout: 10_000 });
  });

  after(async () => {
    await gw.close();
    await fake.close();
  });

  it('a bad key is an AuthenticationError in the Messages API error shape', async () => {
    const bad = new Anthropic({ baseURL: gw.url, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(
      bad.messages.create({ model: 'text', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
        assert.equal((e.error as { type?: string }).type, 'error');
        assert.equal((e.error as { error?: { type?: string } }).error?.type, 'authentication_error');
        return true;
      },
    );
  });

  it('usage of /v1/messages is accounted in the ledger like chat', async () => {
    await client.messages.create({
      model: 'text',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hi.' }],
    });
    const res = await fetch(`${gw.url}/admin/usage?tenant=anthropic-client&group_by=model`, {
      headers: { authorization: 'Bearer test-admin-token' },
    });
    const body = (await res.json()) as {
      data: Array<{ group: string; requests: number; tokens_in: number }>;
    };
    const row = body.data.find((r) => r.group === 'text');
    assert.ok(row && row.requests >= 1 && row.tokens_in >= 12, JSON.stringify(body));
  });

  const weatherTool: Anthropic.Tool = {
    name: 'get_weather',
    description: 'Current weather for a city.',
    input_schema: {
      type: 'object',
      properties: { location: { type: 'string' }, unit: { type: 'string' } },
      required: ['location'],
    },
  };

  it('messages.create: text and usage', async () => {
    const msg = await client.messages.create({
      model: 'text',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'text');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello! How can I help you today?' }]);
    assert.equal(msg.usage.input_tokens, 12);
    assert.equal(msg.usage.output_tokens, 10);
  });

  it('messages.create: tool use, then the tool result turn', async () => {
    const msg = await client.messages.create({
      model: 'tool-call',
      max_tokens: 256,
      tools: [weatherTool],
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    });
    assert.equal(msg.stop_reason, 'tool_use');
    const use = msg.content.find((b) => b.type === 'tool_use');
    assert.ok(use && use.type === 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { location: 'Paris', unit: 'celsius' });

    const next = await client.messages.create({
      model: 'tool-result',
      max_tokens: 256,
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: msg.content },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"temperature":18}' }],
        },
      ],
    });
    assert.deepEqual(next.content, [{ type: 'text', text: 'It is 18°C in Paris.' }]);
    const sent = fake.requests.at(-1)?.body as { messages: Array<{ role: string; tool_call_id?: string }> };
    assert.deepEqual(
      sent.messages.map((m) => m.role),
      ['user', 'assistant', 'tool'],
    );
    assert.equal(sent.messages[2]?.tool_call_id, use.id);
  });

  it('messages.stream: valid event sequence, text and usage', async () => {
    const stream = client.messages.stream({
      model: 'stream-text',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    const events: SseLike[] = [];
    // Snapshot each event as the SDK sees it (it later accumulates into the message_start object).
    stream.on('streamEvent', (ev) =>
      events.push({ event: ev.type, data: JSON.parse(JSON.stringify(ev)) as unknown }),
    );
    const final = await stream.finalMessage();
    assert.deepEqual(final.content, [{ type: 'text', text: 'Hello! How can I help you today?' }]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.input_tokens, 12);
    assert.equal(final.usage.output_tokens, 10);
    // The SDK drops nothing but ping from what we sent; message_stop included.
    assertValidAnthropicStream(events);
    assert.equal(
      ((fake.requests.at(-1)?.body as { stream_options?: { include_usage?: boolean } }).stream_options ?? {})
        .include_usage,
      true,
      'usage requested from the backend',
    );
  });

  it('messages.stream: streamed tool use fragments reassemble to the same JSON', async () => {
    const stream = client.messages.stream({
      model: 'stream-tool-call',
      max_tokens: 256,
      tools: [weatherTool],
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    });
    const fragments: string[] = [];
    stream.on('inputJson', (partial) => fragments.push(partial));
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const use = final.content.find((b) => b.type === 'tool_use');
    assert.ok(use && use.type === 'tool_use');
    assert.equal(use.id, 'call_DdmO9pD3xa9XTPNJ32zg2hcA');
    assert.deepEqual(use.input, { location: 'Paris', unit: 'celsius' });
    assert.ok(fragments.length >= 2, 'arguments arrived in fragments');
    assert.deepEqual(JSON.parse(fragments.join('')), { location: 'Paris', unit: 'celsius' });
    assert.equal(final.usage.input_tokens, 50);
    assert.equal(final.usage.output_tokens, 20);
  });

  it('errors: rate limit becomes RateLimitError with retry-after', async () => {
    await assert.rejects(
      client.messages.create({
        model: 'error-rate-limit',
        max_tokens: 8,
        messages: [{ role: 'user', content: 'x' }],
      }),
      (e) => {
        assert.ok(e instanceof Anthropic.RateLimitError, String(e));
        assert.equal(e.status, 429);
        assert.equal(e.headers?.get('retry-after'), '7');
        assert.equal((e.error as { error?: { type?: string } }).error?.type, 'rate_limit_error');
        return true;
      },
    );
  });

  it('errors: invalid request becomes BadRequestError naming the field', async () => {
    await assert.rejects(
      client.messages.create({
        model: 'text',
        max_tokens: 0,
        messages: [{ role: 'user', content: 'x' }],
      }),
      (e) => {
        assert.ok(e instanceof Anthropic.BadRequestError, String(e));
        const body = e.error as { type: string; error: { type: string; message: string } };
        assert.equal(body.type, 'error');
        assert.equal(body.error.type, 'invalid_request_error');
        assert.match(body.error.message, /^max_tokens/);
        return true;
      },
    );
  });

  it('errors: an in-stream failure surfaces as an APIError of type overloaded_error', async () => {
    const stream = client.messages.stream({
      model: 'stream-error',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'x' }],
    });
    let text = '';
    stream.on('text', (t) => (text += t));
    await assert.rejects(stream.finalMessage(), (e) => {
      assert.ok(e instanceof Anthropic.APIError, String(e));
      assert.equal((e.error as { error?: { type?: string } }).error?.type, 'overloaded_error');
      return true;
    });
    assert.equal(text, 'Hello');
    // Recorded as the failure it is (review, 2026-12-07: it was a 200 with no error).
    const log = (await (
      await fetch(`${gw.url}/admin/requests?limit=1`, {
        headers: { authorization: 'Bearer test-admin-token' },
      })
    ).json()) as { data: Array<{ route: string; status: number; partial: boolean; error: unknown }> };
    const rec = log.data[0];
    assert.equal(rec?.route, 'messages');
    assert.ok((rec?.status ?? 0) >= 500, JSON.stringify(rec));
    assert.equal(rec?.partial, true);
    assert.ok(rec?.error, 'the error is recorded');
  });
});
