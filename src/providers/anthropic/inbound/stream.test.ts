import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PorticoError } from '../../../errors/portico-error.js';
import type { ChatCompletionChunk } from '../../openai-types.js';
import { readSseMessages } from '../read-sse.js';
import type { AnthropicSseEvent } from '../types.js';
import { assertValidAnthropicStream } from '../../../../test/support/anthropic-stream-validator.js';
import { encodeAnthropicSse, openAIChunksToAnthropicEvents } from './stream.js';

async function* openAIFixture(name: string): AsyncGenerator<ChatCompletionChunk> {
  const text = readFileSync(
    new URL(`../../../../test/fixtures/providers/openai/${name}.sse`, import.meta.url),
    'utf8',
  );
  async function* once(): AsyncGenerator<string> {
    yield text;
  }
  for await (const m of readSseMessages(once())) {
    if (m.data === '[DONE]') return;
    const v = JSON.parse(m.data) as { error?: { message: string } };
    if (v.error) throw new PorticoError('upstream_unavailable', v.error.message);
    yield v as ChatCompletionChunk;
  }
}

async function* list(chunks: ChatCompletionChunk[]): AsyncGenerator<ChatCompletionChunk> {
  yield* chunks;
}

async function events(src: AsyncIterable<ChatCompletionChunk>): Promise<AnthropicSseEvent[]> {
  const out: AnthropicSseEvent[] = [];
  for await (const e of openAIChunksToAnthropicEvents(src, { model: 'alias' })) out.push(e);
  return out;
}

const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk' as const, created: 1, model: 'm' };
const delta = (
  d: ChatCompletionChunk['choices'][number]['delta'],
  finish: ChatCompletionChunk['choices'][number]['finish_reason'] = null,
) => ({
  ...base,
  choices: [{ index: 0, delta: d, finish_reason: finish }],
});

describe('openAIChunksToAnthropicEvents', () => {
  it('turns a text stream into a valid event sequence with usage in message_delta', async () => {
    const evs = await events(openAIFixture('stream-text'));
    const { text } = assertValidAnthropicStream(evs);
    assert.equal(text, 'Hello! How can I help you today?');
    assert.deepEqual(
      evs.map((e) => e.event),
      [
        'message_start',
        'content_block_start',
        'content_block_delta',
        'content_block_delta',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ],
    );
    const md = evs.at(-2)?.data;
    assert.deepEqual(md, {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 10, input_tokens: 12 },
    });
    const start = evs[0]?.data;
    assert.ok(start?.type === 'message_start');
    assert.equal(start.message.model, 'alias');
    assert.match(start.message.id, /^msg_/);
  });

  it('streams a tool call as tool_use + input_json_delta whose fragments reassemble', async () => {
    const evs = await events(openAIFixture('stream-tool-call'));
    const { toolInputs } = assertValidAnthropicStream(evs);
    assert.deepEqual(JSON.parse(toolInputs.get(0) ?? ''), { location: 'Paris', unit: 'celsius' });
    const start = evs.find((e) => e.event === 'content_block_start')?.data;
    assert.deepEqual(start, {
      type: 'content_block_start',
      index: 0,
      content_block: {
        type: 'tool_use',
        id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA',
        name: 'get_weather',
        input: {},
      },
    });
    assert.equal(evs.filter((e) => e.event === 'content_block_delta').length, 4);
    const md = evs.at(-2)?.data;
    assert.ok(md?.type === 'message_delta');
    assert.equal(md.delta.stop_reason, 'tool_use');
  });

  it('opens a new block per tool call after text, never interleaving', async () => {
    const evs = await events(
      list([
        delta({ role: 'assistant', content: 'Let me look.' }),
        delta({
          tool_calls: [{ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '{"x":' } }],
        }),
        delta({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
        delta({
          tool_calls: [{ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '' } }],
        }),
        delta({ tool_calls: [{ index: 1, function: { arguments: '{"y":2}' } }] }),
        delta({}, 'tool_calls'),
        {
          ...base,
          choices: [],
          usage: {
            prompt_tokens: 100,
            completion_tokens: 7,
            total_tokens: 107,
            prompt_tokens_details: { cached_tokens: 60 },
          },
        },
      ]),
    );
    const { text, toolInputs } = assertValidAnthropicStream(evs);
    assert.equal(text, 'Let me look.');
    assert.deepEqual(JSON.parse(toolInputs.get(1) ?? ''), { x: 1 });
    assert.deepEqual(JSON.parse(toolInputs.get(2) ?? ''), { y: 2 });
    const md = evs.at(-2)?.data;
    assert.ok(md?.type === 'message_delta');
    assert.deepEqual(md.usage, {
      output_tokens: 7,
      input_tokens: 40,
      cache_read_input_tokens: 60,
      cache_creation_input_tokens: 0,
    });
  });

  it('rethrows a failure mid-stream after the events so far (the writer sends the error event)', async () => {
    // Review (2026-12-07): the error used to be yielded as an event and the generator ended
    // normally, so the route recorded a failed stream as a 200.
    const evs: AnthropicSseEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of openAIChunksToAnthropicEvents(openAIFixture('stream-error'), {
          model: 'alias',
        }))
          evs.push(e);
      })(),
      (e: unknown) => e instanceof PorticoError && e.code === 'upstream_unavailable',
    );
    assert.equal(evs[0]?.event, 'message_start');
    assert.ok(!evs.some((e) => e.event === 'error'));
  });

  it('produces a valid empty message for an empty source, and maps length', async () => {
    assertValidAnthropicStream(await events(list([])));
    const evs = await events(list([delta({ content: 'a' }), delta({}, 'length')]));
    assertValidAnthropicStream(evs);
    const md = evs.at(-2)?.data;
    assert.ok(md?.type === 'message_delta');
    assert.equal(md.delta.stop_reason, 'max_tokens');
  });

  it('encodes SSE frames', () => {
    assert.equal(
      encodeAnthropicSse({ event: 'message_stop', data: { type: 'message_stop' } }),
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
  });
});
