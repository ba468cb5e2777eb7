/**
 * A backend that reports no usage (review, each case reproduced against the old code first):
 * - /v1/messages told the client 0/0 tokens while the ledger billed Portico's count: the client
 *   is now told the counts the ledger bills, answered whole or streamed;
 * - a non-streamed answer of tool calls alone was billed 0 output tokens (streamed, the same
 *   answer was billed its arguments): tool-call arguments now count on every path — the bytes
 *   pass-through of /v1/chat/completions and the parsed answer /v1/responses and /ask use —
 *   and the Responses API reports what is billed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { RequestContext } from '../../src/pipeline/context.js';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const TEXT = 'one two three four five six seven eight nine ten';
const ARGS = '{"city": "Paris, France, Europe, Earth", "unit": "celsius", "days": 3}';
const TOOL_CALL = {
  id: 'call_1',
  type: 'function',
  function: { name: 'get_weather', arguments: ARGS },
};
const TOOLS: OpenAI.Chat.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    },
  },
];

const chunk = (delta: unknown, finish: string | null = null): string =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** The upstream's answer, without usage: tool calls when the request has tools, else text. */
function answer(body: { stream?: boolean; tools?: unknown[] }): { type: string; text: string } {
  const tool = (body.tools ?? []).length > 0;
  if (body.stream === true)
    return {
      type: 'text/event-stream',
      text:
        (tool
          ? chunk({ role: 'assistant', tool_calls: [{ index: 0, ...TOOL_CALL }] })
          : chunk({ role: 'assistant', content: TEXT })) +
        chunk({}, tool ? 'tool_calls' : 'stop') +
        'data: [DONE]\n\n',
    };
  const message = tool
    ? { role: 'assistant', content: null, tool_calls: [TOOL_CALL] }
    : { role: 'assistant', content: TEXT };
  return {
    type: 'application/json',
    text: JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      created: 1,
      model: 'up',
      choices: [{ index: 0, message, finish_reason: tool ? 'tool_calls' : 'stop' }],
    }),
  };
}

describe('a backend that reports no usage', () => {
  let upstream: Server;
  let gw: TestGateway;
  const billed: Array<{ input: number; output: number; estimated: boolean } | undefined> = [];

  before(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const a = answer(JSON.parse(body || '{}') as { stream?: boolean; tools?: unknown[] });
        res.writeHead(200, { 'content-type': a.type });
        res.end(a.text);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', api_keys: [{ value: ACME_KEY }] }],
        routes: { quant: { model: 'default' } },
        models: {
          default: {
            backends: [
              { id: 'up', provider: 'openai', base_url: url, model: 'up', force_include_usage: false },
            ],
            health_check: { enabled: false },
          },
        },
      }),
    );
    gw.gateway.deps.onFinish.push((ctx: RequestContext) => {
      const t = ctx.accountedTokens;
      billed.push(t && { input: t.input, output: t.output, estimated: t.estimated });
    });
  });
  after(async () => {
    await gw.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  /** What the request run by `fn` was billed (its onFinish record). */
  async function billedFor(fn: () => Promise<unknown>): Promise<{ input: number; output: number }> {
    const before = billed.length;
    await fn();
    for (let i = 0; i < 100 && billed.length === before; i++) await new Promise((r) => setTimeout(r, 5));
    const b = billed[before];
    assert.ok(b, 'the request was not accounted');
    assert.equal(b.estimated, true);
    return { input: b.input, output: b.output };
  }

  const anthropic = (): Anthropic => new Anthropic({ baseURL: gw.url, apiKey: ACME_KEY, maxRetries: 0 });
  const openai = (): OpenAI => new OpenAI({ baseURL: gw.baseURL, apiKey: ACME_KEY, maxRetries: 0 });
  const ask = { model: 'default', max_tokens: 100, messages: [{ role: 'user' as const, content: 'hi' }] };

  it('/v1/messages reports the usage the ledger bills (before: 0/0)', async () => {
    let usage: Anthropic.Usage | undefined;
    const b = await billedFor(async () => (usage = (await anthropic().messages.create(ask)).usage));
    assert.ok(b.input > 0 && b.output > 0, JSON.stringify(b));
    assert.equal(usage?.input_tokens, b.input);
    assert.equal(usage?.output_tokens, b.output);
  });

  it('/v1/messages streamed reports the usage the ledger bills', async () => {
    let usage: Anthropic.Usage | undefined;
    const b = await billedFor(
      async () => (usage = (await anthropic().messages.stream(ask).finalMessage()).usage),
    );
    assert.ok(b.input > 0 && b.output > 0, JSON.stringify(b));
    assert.equal(usage?.input_tokens, b.input);
    assert.equal(usage?.output_tokens, b.output);
  });

  it('/ask and a team route report the usage the ledger bills (before: null)', async () => {
    const post = async (path: string, body: unknown): Promise<{ usage: unknown }> => {
      const res = await fetch(`${gw.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as { usage: unknown };
    };
    for (const [path, body] of [
      ['/ask', { question: 'hi', max_tokens: 100 }],
      ['/api/quant/predict', { prompt: 'hi', max_tokens: 100 }],
    ] as const) {
      let usage: unknown;
      const b = await billedFor(async () => (usage = (await post(path, body)).usage));
      assert.ok(b.input > 0 && b.output > 0, JSON.stringify(b));
      assert.deepEqual(
        usage,
        { prompt_tokens: b.input, completion_tokens: b.output, total_tokens: b.input + b.output },
        path,
      );
    }
  });

  it('tool calls alone are billed their arguments, whole or streamed, alike', async () => {
    const req = {
      model: 'default',
      messages: [{ role: 'user' as const, content: 'weather?' }],
      tools: TOOLS,
    };
    const streamed = await billedFor(async () => {
      for await (const c of await openai().chat.completions.create({ ...req, stream: true })) void c;
    });
    assert.ok(streamed.output >= 10, JSON.stringify(streamed));
    // /v1/chat/completions passes the upstream's bytes through.
    const whole = await billedFor(() => openai().chat.completions.create(req));
    assert.equal(whole.output, streamed.output); // before: 0
    // Anthropic's tool_use: the parsed-answer path (/v1/responses and /ask use it too).
    let usage: Anthropic.Usage | undefined;
    const messages = await billedFor(
      async () =>
        (usage = (
          await anthropic().messages.create({
            ...ask,
            tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: {} } }],
          })
        ).usage),
    );
    assert.equal(messages.output, streamed.output); // before: 0
    assert.equal(usage?.output_tokens, messages.output);
  });

  it('/v1/responses bills a tool call its arguments and reports that usage, whole or streamed', async () => {
    const req = {
      model: 'default',
      input: 'weather?',
      tools: [
        {
          type: 'function' as const,
          name: 'get_weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
          strict: false,
        },
      ],
    };
    let usage: OpenAI.Responses.ResponseUsage | undefined;
    const whole = await billedFor(async () => (usage = (await openai().responses.create(req)).usage));
    assert.ok(whole.output >= 10, JSON.stringify(whole)); // before: 0
    assert.equal(usage?.output_tokens, whole.output);
    assert.equal(usage?.input_tokens, whole.input);
    const streamed = await billedFor(async () => {
      for await (const e of await openai().responses.create({ ...req, stream: true }))
        if (e.type === 'response.completed') usage = e.response.usage;
    });
    assert.equal(streamed.output, whole.output);
    assert.equal(usage?.output_tokens, streamed.output); // before: 0 (only text was counted)
  });
});
