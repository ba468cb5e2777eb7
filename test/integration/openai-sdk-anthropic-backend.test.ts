/**
 * The official `openai` SDK gets correct answers from an Anthropic-protocol backend through the
 * Anthropic adapter. Chain (all real, on loopback): openai SDK -> tiny Fastify
 * /v1/chat/completions route (what the gateway's route does with a Provider) -> AnthropicProvider
 * (undici pool) -> fake Anthropic upstream replaying test/fixtures/providers/anthropic.
 * The fixture is picked by model name (the adapter forwards the request's model).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import Fastify, { type FastifyInstance } from 'fastify';
import { PorticoError, isPorticoError } from '../../src/errors/portico-error.js';
import type { ChatCompletionRequest } from '../../src/providers/openai-types.js';
import type { Provider } from '../../src/providers/spec.js';
import { createAnthropicProvider } from '../../src/providers/anthropic/index.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';

describe('openai SDK -> Anthropic adapter -> fake Anthropic upstream', () => {
  let fake: FakeUpstream;
  let provider: Provider;
  let app: FastifyInstance;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeUpstream({
      protocol: 'anthropic',
      fixturesDir: fileURLToPath(new URL('../fixtures/providers/anthropic/', import.meta.url)),
    });
    provider = createAnthropicProvider({
      id: 'claude',
      baseUrl: fake.baseUrl,
      apiKey: 'sk-ant-x',
      defaultMaxTokens: 512,
    });
    app = Fastify({ logger: false, forceCloseConnections: true });
    app.post('/v1/chat/completions', async (req, reply) => {
      const body = req.body as ChatCompletionRequest;
      const ac = new AbortController();
      reply.raw.on('close', () => ac.abort(new PorticoError('client_closed_request', 'client went away')));
      const ctx = { signal: ac.signal, requestId: 'r', correlationId: 'c' };
      try {
        if (body.stream !== true) return await reply.send(await provider.chat(body, ctx));
        const stream = await provider.chatStream(body, ctx);
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
        try {
          for await (const chunk of stream) reply.raw.write(`data: ${JSON.stringify(chunk)}\n\n`);
        } catch (e) {
          const err = isPorticoError(e) ? e : new PorticoError('internal_error', 'Internal error.');
          reply.raw.write(`data: ${JSON.stringify(err.toBody())}\n\n`);
        }
        reply.raw.end('data: [DONE]\n\n');
        return reply;
      } catch (e) {
        const err = isPorticoError(e) ? e : new PorticoError('internal_error', 'Internal error.');
        return reply.code(err.status).headers(err.headers).send(err.toBody());
      }
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    assert.ok(addr && typeof addr === 'object');
    client = new OpenAI({
      baseURL: `http://127.0.0.1:${addr.port}/v1`,
      apiKey: 'portico-key',
      maxRetries: 0,
      timeout: 5000,
    });
  });

  after(async () => {
    await app.close();
    await provider.close();
    await fake.close();
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
