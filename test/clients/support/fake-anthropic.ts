/**
 * A fake Anthropic Messages API on loopback for the client-compatibility suite. It records every
 * request (headers and body) and answers the way Claude's API does in shape: tool_use when a tool is
 * forced or the last user turn names one (inputs valid against the tool's schema), thinking blocks
 * with signatures when thinking is enabled, prompt-cache usage when a cache_control breakpoint is
 * present, the full streaming event sequence, count_tokens and the models list.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { sampleFromSchema } from '../../../src/sim/generate.js';

export interface RecordedAnthropic {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

type Block = Record<string, unknown>;
type Msg = { role: string; content: string | Block[] };
type Tool = { name: string; input_schema?: unknown };

export const FAKE_TEXT = 'Hello from the fake Anthropic upstream.';
export const FAKE_THINKING = 'Let me think about this step by step.';
export const FAKE_SIGNATURE = 'sig-fake-0123456789';

function textOf(content: string | Block[]): string {
  if (typeof content === 'string') return content;
  return content.map((b) => (b.type === 'text' ? String(b.text) : '')).join(' ');
}

function hasCacheControl(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasCacheControl);
  if (typeof v !== 'object' || v === null) return false;
  if ('cache_control' in v) return true;
  return Object.values(v).some(hasCacheControl);
}

function countTokens(body: Record<string, unknown>): number {
  const text = JSON.stringify([body.system ?? '', body.messages ?? [], body.tools ?? []]);
  return Math.max(1, Math.ceil(text.length / 4));
}

/** The answer's content blocks for a request. */
function answer(body: Record<string, unknown>): { blocks: Block[]; stop: string } {
  const messages = (body.messages ?? []) as Msg[];
  const last = messages[messages.length - 1];
  const tools = (body.tools ?? []) as Tool[];
  const choice = body.tool_choice as { type?: string; name?: string } | undefined;
  const blocks: Block[] = [];
  const thinking = body.thinking as { type?: string } | undefined;
  if (thinking?.type === 'enabled')
    blocks.push({ type: 'thinking', thinking: FAKE_THINKING, signature: FAKE_SIGNATURE });
  // Tool results are the last user turn: answer in text, so agent loops end.
  const lastIsResult =
    last !== undefined && Array.isArray(last.content) && last.content.some((b) => b.type === 'tool_result');
  let tool: Tool | undefined;
  if (choice?.type === 'tool') tool = tools.find((t) => t.name === choice.name);
  else if (choice?.type === 'any') tool = tools[tools.length - 1];
  else if (choice?.type !== 'none' && last?.role === 'user' && !lastIsResult) {
    const said = textOf(last.content).toLowerCase();
    tool = tools.find((t) => said.includes(t.name.toLowerCase()));
  }
  if (tool) {
    blocks.push({
      type: 'tool_use',
      id: `toolu_fake_${messages.length}`,
      name: tool.name,
      input: sampleFromSchema(tool.input_schema ?? { type: 'object' }) ?? {},
    });
    return { blocks, stop: 'tool_use' };
  }
  blocks.push({ type: 'text', text: FAKE_TEXT });
  return { blocks, stop: 'end_turn' };
}

function usageFor(body: Record<string, unknown>, output: number): Record<string, number> {
  const input = countTokens(body);
  const cached = hasCacheControl(body);
  return {
    input_tokens: input,
    output_tokens: output,
    cache_creation_input_tokens: cached ? 7 : 0,
    cache_read_input_tokens: cached ? 5 : 0,
  };
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export async function startFakeAnthropic(): Promise<{
  url: string;
  received: RecordedAnthropic[];
  last: (path?: string) => RecordedAnthropic;
  close: () => Promise<void>;
}> {
  const app: FastifyInstance = Fastify({ logger: false });
  const received: RecordedAnthropic[] = [];
  let n = 0;
  app.post('/v1/messages', async (req, reply) => {
    const body = req.body as Record<string, unknown>;
    received.push({ path: '/v1/messages', headers: req.headers, body });
    const { blocks, stop } = answer(body);
    const id = `msg_fake_${++n}`;
    const model = String(body.model);
    const usage = usageFor(body, 12);
    if (body.stream !== true)
      return {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: blocks,
        stop_reason: stop,
        stop_sequence: null,
        usage,
      };
    let out = sse('message_start', {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    });
    out += sse('ping', { type: 'ping' });
    blocks.forEach((b, index) => {
      if (b.type === 'thinking') {
        out += sse('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'thinking', thinking: '', signature: '' },
        });
        for (const piece of String(b.thinking).split(/(?<= )/))
          out += sse('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'thinking_delta', thinking: piece },
          });
        out += sse('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'signature_delta', signature: b.signature },
        });
      } else if (b.type === 'tool_use') {
        out += sse('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { ...b, input: {} },
        });
        const json = JSON.stringify(b.input);
        for (let i = 0; i < json.length; i += 5)
          out += sse('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: json.slice(i, i + 5) },
          });
      } else {
        out += sse('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'text', text: '' },
        });
        for (const piece of String(b.text).split(/(?<= )/))
          out += sse('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'text_delta', text: piece },
          });
      }
      out += sse('content_block_stop', { type: 'content_block_stop', index });
    });
    out += sse('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stop, stop_sequence: null },
      usage: { output_tokens: 12 },
    });
    out += sse('message_stop', { type: 'message_stop' });
    reply.header('content-type', 'text/event-stream').send(out);
    return reply;
  });
  app.post('/v1/messages/count_tokens', async (req) => {
    const body = req.body as Record<string, unknown>;
    received.push({ path: '/v1/messages/count_tokens', headers: req.headers, body });
    return { input_tokens: countTokens(body) };
  });
  app.get('/v1/models', async () => ({
    data: [
      { type: 'model', id: 'claude-fake', display_name: 'Claude Fake', created_at: '2025-01-01T00:00:00Z' },
    ],
    has_more: false,
    first_id: 'claude-fake',
    last_id: 'claude-fake',
  }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    received,
    last: (path = '/v1/messages') => {
      const r = [...received].reverse().find((x) => x.path === path);
      if (!r) throw new Error(`the fake Anthropic upstream received no ${path}`);
      return r;
    },
    close: () => app.close(),
  };
}
