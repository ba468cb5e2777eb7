/**
 * The official @anthropic-ai/sdk parses what Portico's inbound Anthropic converters produce.
 * Chain (all real, on loopback): Anthropic SDK -> tiny Fastify POST /v1/messages route (the
 * converters, as the gateway's route will use them) -> official openai SDK standing in for the
 * OpenAI-compatible adapter -> fake OpenAI upstream replaying test/fixtures/providers/openai.
 * The fixture is picked by model name. This de-risks the gateway's end-to-end /v1/messages test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import Fastify, { type FastifyInstance } from 'fastify';
import { PorticoError, isPorticoError } from '../../src/errors/portico-error.js';
import type { ErrorCode } from '../../src/errors/catalog.js';
import type { ChatCompletionChunk, ChatCompletionResponse } from '../../src/providers/openai-types.js';
import {
  anthropicRequestToOpenAI,
  encodeAnthropicSse,
  openAIChunksToAnthropicEvents,
  openAIErrorToAnthropic,
  openAIResponseToAnthropic,
} from '../../src/providers/anthropic/index.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { assertValidAnthropicStream, type SseLike } from '../support/anthropic-stream-validator.js';

/** Stand-in for the OpenAI-compatible adapter's error mapping (status -> catalog). */
function toPortico(e: unknown): unknown {
  if (!(e instanceof OpenAI.APIError)) return e;
  const bodyCode = (e.error as { code?: unknown } | undefined)?.code;
  const status = e.status ?? (typeof bodyCode === 'number' ? bodyCode : 502);
  const code: ErrorCode =
    status === 400
      ? 'invalid_request'
      : status === 404
        ? 'model_not_found'
        : status === 429
          ? 'rate_limit_exceeded'
          : status === 503
            ? 'upstream_unavailable'
            : 'upstream_error';
  const retryAfter = e.headers?.get('retry-after');
  return new PorticoError(code, e.message, { headers: retryAfter ? { 'retry-after': retryAfter } : {} });
}

async function* mapErrors(src: AsyncIterable<ChatCompletionChunk>): AsyncGenerator<ChatCompletionChunk> {
  try {
    yield* src;
  } catch (e) {
    throw toPortico(e);
  }
}

describe('@anthropic-ai/sdk against the inbound converters', () => {
  let fake: FakeUpstream;
  let app: FastifyInstance;
  let backend: OpenAI;
  let client: Anthropic;

  before(async () => {
    fake = await startFakeUpstream({
      protocol: 'openai',
      fixturesDir: fileURLToPath(new URL('../fixtures/providers/openai/', import.meta.url)),
    });
    backend = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'sk-backend', maxRetries: 0, timeout: 5000 });
    app = Fastify({ logger: false, forceCloseConnections: true });
    app.post('/v1/messages', async (req, reply) => {
      try {
        const oreq = anthropicRequestToOpenAI(req.body);
        if (oreq.stream !== true) {
          const res = (await backend.chat.completions
            .create({ ...(oreq as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming) })
            .catch((e: unknown) => Promise.reject(toPortico(e)))) as unknown as ChatCompletionResponse;
          return await reply.send(openAIResponseToAnthropic(res, { model: oreq.model }));
        }
        // As the gateway will: open the upstream stream first (errors here are still HTTP errors).
        const upstream = await backend.chat.completions
          .create({ ...(oreq as unknown as OpenAI.ChatCompletionCreateParamsStreaming) })
          .catch((e: unknown) => Promise.reject(toPortico(e)));
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const chunks = mapErrors(upstream as unknown as AsyncIterable<ChatCompletionChunk>);
        for await (const ev of openAIChunksToAnthropicEvents(chunks, { model: oreq.model })) {
          reply.raw.write(encodeAnthropicSse(ev));
        }
        reply.raw.end();
        return reply;
      } catch (e) {
        const err = isPorticoError(e) ? e : new PorticoError('internal_error', 'Internal error.');
        return reply.code(err.status).headers(err.headers).send(openAIErrorToAnthropic(err));
      }
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    assert.ok(addr && typeof addr === 'object');
    client = new Anthropic({
      baseURL: `http://127.0.0.1:${addr.port}`,
      apiKey: 'portico-key',
      maxRetries: 0,
      timeout: 5000,
    });
  });

  after(async () => {
    await app.close();
    await fake.close();
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
  });
});
