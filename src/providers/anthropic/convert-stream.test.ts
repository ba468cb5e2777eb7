import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isPorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionChunk } from '../openai-types.js';
import { anthropicEventsToChunks } from './convert-stream.js';
import { decodeAnthropicEvents, readSseMessages } from './read-sse.js';

function sse(name: string): string {
  return readFileSync(
    new URL(`../../../test/fixtures/providers/anthropic/${name}.sse`, import.meta.url),
    'utf8',
  );
}

/** Feeds the text in small odd-sized byte chunks, as a network would split it. */
async function* bytes(text: string, size = 7): AsyncGenerator<Uint8Array> {
  const b = new TextEncoder().encode(text);
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function run(text: string, includeUsage: boolean): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of anthropicEventsToChunks(decodeAnthropicEvents(readSseMessages(bytes(text))), {
    includeUsage,
    created: 1,
    model: 'alias',
  })) {
    out.push(c);
  }
  return out;
}

describe('anthropicEventsToChunks', () => {
  it('turns a text stream into chunks with usage at the end (byte-split input)', async () => {
    const chunks = await run(sse('stream-text'), true);
    assert.deepEqual(chunks[0]?.choices[0]?.delta, { role: 'assistant', content: '' });
    assert.equal(
      chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''),
      'Hello! How can I help you today?',
    );
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(chunks.at(-1), {
      id: 'msg_01StreamText0000000000',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'alias',
      choices: [],
      usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 },
    });
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
  });

  it('omits the usage chunk and usage fields without include_usage', async () => {
    const chunks = await run(sse('stream-text'), false);
    assert.ok(chunks.every((c) => c.usage === undefined && c.choices.length === 1));
  });

  it('streams tool_use as tool_calls deltas whose fragments reassemble', async () => {
    const chunks = await run(sse('stream-tool-call'), true);
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    assert.deepEqual(deltas[0], {
      index: 0,
      id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    const args = deltas.map((d) => d.function?.arguments ?? '').join('');
    assert.deepEqual(JSON.parse(args), { location: 'Paris', unit: 'celsius' });
    assert.equal(deltas.length, 5, 'start + 4 non-empty fragments (the empty one is skipped)');
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'tool_calls');
  });

  it('throws a mapped PorticoError on an error event', async () => {
    await assert.rejects(
      run(sse('stream-error'), true),
      (e) => isPorticoError(e) && e.code === 'upstream_unavailable',
    );
  });

  it('throws upstream_error when the stream ends without message_stop', async () => {
    await assert.rejects(
      run(sse('stream-hang'), true),
      (e) => isPorticoError(e) && e.code === 'upstream_error',
    );
  });

  it('reports cache tokens from message_start when message_delta omits them', async () => {
    const text = [
      'event: message_start',
      'data: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":4,"cache_read_input_tokens":90,"cache_creation_input_tokens":0,"output_tokens":1}}}',
      '',
      'event: message_delta',
      'data: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":2}}',
      '',
      'event: message_stop',
      'data: {"type":"message_stop"}',
      '',
      '',
    ].join('\r\n');
    const chunks = await run(text, true);
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'length');
    assert.deepEqual(chunks.at(-1)?.usage, {
      prompt_tokens: 94,
      completion_tokens: 2,
      total_tokens: 96,
      prompt_tokens_details: { cached_tokens: 90 },
      cache_read_input_tokens: 90,
      cache_creation_input_tokens: 0,
    });
  });
});
