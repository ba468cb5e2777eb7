/**
 * What a stream is billed when the client did not ask for usage (review, 2026-12-07, each case
 * reproduced against the old code first):
 * - Anthropic, the engine and the simulator send usage only when asked: Portico now always asks
 *   them (and hides the usage chunk from the client), so the exact counts are billed, not an
 *   estimate;
 * - a completed stream without upstream usage (an OpenAI-compatible backend with
 *   force_include_usage: false) was billed 0 input tokens: its prompt is now estimated;
 * - a stream of tool calls alone was billed 0 output tokens: tool-call arguments now count.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestContext } from '../../src/pipeline/context.js';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

interface Billed {
  route: string;
  status: number;
  tokens?: { input: number; output: number; estimated: boolean };
}

const sseA = (events: Array<[string, unknown]>): string =>
  events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
const chunk = (delta: unknown, finish: string | null = null): string =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'x', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

const ANTHROPIC_STREAM = sseA([
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-x',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 1200, output_tokens: 1 },
      },
    },
  ],
  [
    'content_block_start',
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello there.' } },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  [
    'message_delta',
    {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 87 },
    },
  ],
  ['message_stop', { type: 'message_stop' }],
]);

const TEXT_NO_USAGE =
  chunk({ role: 'assistant', content: 'Some answer text here.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n';
const TOOLS_NO_USAGE =
  chunk({
    role: 'assistant',
    tool_calls: [
      { index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } },
    ],
  }) +
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"location": "Paris, France", ' } }] }) +
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"unit": "celsius"}' } }] }) +
  chunk({}, 'tool_calls') +
  'data: [DONE]\n\n';

describe('stream billing when the client does not ask for usage', () => {
  let upstream: Server;
  let url = '';
  let gw: TestGateway;
  const billed: Billed[] = [];
  const asked: unknown[] = [];

  before(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const b = JSON.parse(body || '{}') as { model?: string; stream_options?: unknown };
        asked.push(b.stream_options);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (req.url?.includes('/messages')) res.end(ANTHROPIC_STREAM);
        else res.end(b.model === 'tools' ? TOOLS_NO_USAGE : TEXT_NO_USAGE);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const hc = { enabled: false };
    const openai = (model: string): unknown => ({
      backends: [
        { id: `oai-${model}`, provider: 'openai', base_url: `${url}/v1`, model, force_include_usage: false },
      ],
      health_check: hc,
    });
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          {
            id: 'acme-corp',
            allowed_models: ['claude', 'text', 'tools', 'sim'],
            api_keys: [{ value: ACME_KEY }],
          },
        ],
        models: {
          claude: {
            backends: [
              { id: 'claude', provider: 'anthropic', base_url: url, api_key: 'sk-ant', model: 'claude-x' },
            ],
            health_check: hc,
          },
          text: openai('text'),
          tools: openai('tools'),
          sim: { backends: [{ id: 'sim', provider: 'sim', sim: { mode: 'lorem', output_tokens: 9 } }] },
        },
      }),
    );
    gw.gateway.deps.onFinish.push((ctx: RequestContext, status: number) => {
      const t = ctx.accountedTokens;
      billed.push({
        route: ctx.route,
        status,
        ...(t ? { tokens: { input: t.input, output: t.output, estimated: t.estimated } } : {}),
      });
    });
  });
  after(async () => {
    await gw.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  async function stream(model: string): Promise<{ text: string; billed: Billed | undefined }> {
    const before = billed.length;
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        stream: true,
        messages: [{ role: 'user', content: 'A prompt with a number of words in it to count. '.repeat(20) }],
      }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    for (let i = 0; i < 100 && billed.length === before; i++) await new Promise((r) => setTimeout(r, 5));
    return { text, billed: billed[before] };
  }

  it('Anthropic: the exact counts are billed, and the client sees no usage chunk', async () => {
    const r = await stream('claude');
    // Before: {"input":0,"output":0,"estimated":true} (the converter dropped usage not asked for).
    assert.deepEqual(r.billed?.tokens, { input: 1200, output: 87, estimated: false });
    assert.doesNotMatch(r.text, /"usage":\{/);
  });

  it('the simulator: its exact counts too', async () => {
    const r = await stream('sim');
    assert.equal(r.billed?.tokens?.estimated, false);
    assert.equal(r.billed?.tokens?.output, 9);
    assert.doesNotMatch(r.text, /"usage":\{/);
  });

  it('an OpenAI-compatible backend that sends no usage: the prompt is estimated, not 0', async () => {
    const r = await stream('text');
    assert.equal(r.billed?.tokens?.estimated, true);
    assert.ok((r.billed?.tokens?.input ?? 0) > 100, JSON.stringify(r.billed)); // before: 0
    assert.ok((r.billed?.tokens?.output ?? 0) > 0);
    // force_include_usage: false is respected: Portico did not ask that backend for usage.
    assert.equal(asked.at(-1), undefined);
  });

  it('a stream of tool calls alone: the arguments are billed as output', async () => {
    const r = await stream('tools');
    assert.match(r.text, /get_weather/);
    assert.ok((r.billed?.tokens?.output ?? 0) >= 10, JSON.stringify(r.billed)); // before: 0
    assert.ok((r.billed?.tokens?.input ?? 0) > 100);
  });
});
