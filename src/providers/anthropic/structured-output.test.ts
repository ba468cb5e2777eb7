/**
 * Structured outputs on Anthropic: response_format becomes a forced tool, its input comes back as
 * the content (streamed as content deltas, with a non-object schema unwrapped), and what cannot be
 * honoured is a clear 400.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isPorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionRequest } from '../openai-types.js';
import { toAnthropicRequest } from './convert-request.js';
import { fromAnthropicResponse } from './convert-response.js';
import { anthropicEventsToChunks } from './convert-stream.js';
import { responseToolFor } from './structured-output.js';
import type { AnthropicMessage, AnthropicStreamEvent } from './types.js';

const opts = { defaultMaxTokens: 100 };
const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
const base: ChatCompletionRequest = {
  model: 'm',
  messages: [{ role: 'user', content: 'x' }],
  response_format: { type: 'json_schema', json_schema: { name: 'answer', schema } },
};
const fnTool = { type: 'function' as const, function: { name: 'f', parameters: { type: 'object' } } };

function message(
  content: AnthropicMessage['content'],
  stop: AnthropicMessage['stop_reason'],
): AnthropicMessage {
  return {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude',
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: { input_tokens: 3, output_tokens: 4 },
  };
}

async function* events(list: AnthropicStreamEvent[]): AsyncGenerator<AnthropicStreamEvent> {
  yield* list;
}

describe('structured outputs on Anthropic', () => {
  it('sends the schema as a forced tool', () => {
    const out = toAnthropicRequest(base, opts);
    assert.deepEqual(out.tools, [
      {
        name: 'answer',
        description: 'Give your final answer by calling this tool with the answer as its input.',
        input_schema: schema,
      },
    ]);
    assert.deepEqual(out.tool_choice, { type: 'tool', name: 'answer' });
  });

  it('with client tools, lets the model pick a tool but requires one; never reuses a client tool name', () => {
    const out = toAnthropicRequest(
      { ...base, tools: [{ ...fnTool, function: { ...fnTool.function, name: 'answer' } }] },
      opts,
    );
    assert.deepEqual(out.tool_choice, { type: 'any' });
    assert.deepEqual(
      out.tools?.map((t) => t.name),
      ['answer', 'answer_out'],
    );
  });

  it('json_object asks for any object', () => {
    const out = toAnthropicRequest({ ...base, response_format: { type: 'json_object' } }, opts);
    assert.deepEqual(out.tools?.[0]?.input_schema, { type: 'object' });
  });

  it('refuses what it cannot honour, with param', () => {
    for (const req of [
      { ...base, thinking: { type: 'enabled', budget_tokens: 1024 } },
      { ...base, response_format: { type: 'xml' } },
    ]) {
      assert.throws(
        () => toAnthropicRequest(req, opts),
        (e: unknown) => isPorticoError(e) && e.status === 400 && e.param === 'response_format',
      );
    }
  });

  it('returns the tool input as the content, finish_reason stop', () => {
    const res = fromAnthropicResponse(
      message([{ type: 'tool_use', id: 't', name: 'answer', input: { a: 'b' } }], 'tool_use'),
      { responseTool: responseToolFor(base) },
    );
    assert.equal(res.choices[0]?.message.content, '{"a":"b"}');
    assert.equal(res.choices[0]?.message.tool_calls, undefined);
    assert.equal(res.choices[0]?.finish_reason, 'stop');
  });

  it('streams a wrapped (non-object) schema as the bare value', async () => {
    const req: ChatCompletionRequest = {
      ...base,
      response_format: { type: 'json_schema', json_schema: { name: 'list', schema: { type: 'array' } } },
    };
    const rt = responseToolFor(req);
    assert.ok(rt?.wrapped);
    const json = '{"value": [1, {"x": "}"}]}';
    const pieces: AnthropicStreamEvent[] = [];
    for (let i = 0; i < json.length; i += 3)
      pieces.push({
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: json.slice(i, i + 3) },
      });
    const out: string[] = [];
    let finish: string | null = null;
    for await (const c of anthropicEventsToChunks(
      events([
        { type: 'message_start', message: message([], null) },
        {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'tool_use', id: 't', name: 'list', input: {} },
        },
        ...pieces,
        { type: 'content_block_stop', index: 0 },
        {
          type: 'message_delta',
          delta: { stop_reason: 'tool_use', stop_sequence: null },
          usage: { output_tokens: 5 },
        },
        { type: 'message_stop' },
      ]),
      { includeUsage: false, responseTool: rt },
    )) {
      out.push(c.choices[0]?.delta.content ?? '');
      assert.equal(c.choices[0]?.delta.tool_calls, undefined);
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.deepEqual(JSON.parse(out.join('')), [1, { x: '}' }]);
    assert.equal(finish, 'stop');
  });

  it('keeps thinking blocks with signatures, both ways', () => {
    const res = fromAnthropicResponse(
      message(
        [
          { type: 'thinking', thinking: 'hmm', signature: 'sig' },
          { type: 'redacted_thinking', data: 'xx' },
          { type: 'text', text: 'ok' },
        ],
        'end_turn',
      ),
    );
    const msg = res.choices[0]?.message;
    assert.equal(msg?.['reasoning_content'], 'hmm');
    const back = toAnthropicRequest(
      {
        model: 'm',
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: msg?.content ?? null, thinking_blocks: msg?.['thinking_blocks'] },
          { role: 'user', content: 'again' },
        ],
      },
      opts,
    );
    assert.deepEqual(back.messages[1]?.content, [
      { type: 'thinking', thinking: 'hmm', signature: 'sig' },
      { type: 'redacted_thinking', data: 'xx' },
      { type: 'text', text: 'ok' },
    ]);
  });
});
