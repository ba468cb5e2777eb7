import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { accumulateResponse } from 'openai/lib/responses/ResponseAccumulator';
import type { Response, ResponseStreamEvent as SdkEvent } from 'openai/resources/responses/responses';
import { PorticoError } from '../../errors/portico-error.js';
import type { ChatCompletionChunk } from '../openai-types.js';
import { itemsToMessages, parseResponsesRequest, toChatRequest } from './convert-request.js';
import { newResponseId, responseIdOfItem } from './convert-response.js';
import { ResponsesStream } from './convert-stream.js';
import type { ResponseStreamEvent } from './types.js';

function chunk(
  delta: ChatCompletionChunk['choices'][number]['delta'],
  finish: 'stop' | 'tool_calls' | null = null,
): ChatCompletionChunk {
  return {
    id: 'c',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

async function* from<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

function param(fn: () => unknown): string | null {
  try {
    fn();
  } catch (e) {
    if (e instanceof PorticoError) return e.param;
    throw e;
  }
  return 'no error';
}

describe('Responses API conversions', () => {
  it('refuses what it cannot bridge, naming the parameter', () => {
    const base = { model: 'm', input: 'hi' };
    assert.equal(
      param(() => parseResponsesRequest({ ...base, tools: [{ type: 'web_search' }] })),
      'tools[0].type',
    );
    assert.equal(
      param(() => parseResponsesRequest({ ...base, background: true })),
      'background',
    );
    assert.equal(
      param(() => parseResponsesRequest({ ...base, frobnicate: 1 })),
      'frobnicate',
    );
    assert.equal(
      param(() => parseResponsesRequest({ ...base, tool_choice: { type: 'function', name: 'x' } })),
      'tool_choice.name',
    );
    assert.equal(
      param(() => parseResponsesRequest({ model: 'm' })),
      'input',
    );
    // Null means unset, as the SDKs send it.
    assert.equal(
      parseResponsesRequest({ ...base, reasoning: null, tools: null, user: null }).tools.length,
      0,
    );
    // Native pass-through leaves hosted tools and reasoning to the backend; background stays refused.
    const native = parseResponsesRequest(
      { ...base, tools: [{ type: 'web_search' }], reasoning: { effort: 'high' } },
      { native: true },
    );
    assert.deepEqual(native.tools, []);
    assert.equal(
      param(() => parseResponsesRequest({ ...base, background: true }, { native: true })),
      'background',
    );
    assert.equal(
      param(() => parseResponsesRequest({ ...base, conversation: 'c' }, { native: true })),
      'conversation',
    );
  });

  it('items become chat messages: calls join the assistant turn, outputs are tool messages', () => {
    const req = parseResponsesRequest({
      model: 'm',
      instructions: 'sys',
      input: [
        { role: 'developer', content: 'dev' },
        { role: 'user', content: [{ type: 'input_text', text: 'q' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'thinking' }] },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{"a":1}' },
        { type: 'function_call_output', call_id: 'c1', output: 'r1' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'r2' }] },
      ],
      text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object' }, strict: true } },
      max_output_tokens: 9,
    });
    const chat = toChatRequest(
      req,
      req.input.filter((x) => x.type !== 'item_reference'),
    );
    assert.deepEqual(chat.messages, [
      { role: 'system', content: 'sys' },
      { role: 'system', content: 'dev' },
      { role: 'user', content: 'q' },
      {
        role: 'assistant',
        content: 'thinking',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } },
          { id: 'c2', type: 'function', function: { name: 'g', arguments: '{"a":1}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'r1' },
      { role: 'tool', tool_call_id: 'c2', content: 'r2' },
    ]);
    assert.deepEqual(chat.response_format, {
      type: 'json_schema',
      json_schema: { name: 'x', schema: { type: 'object' }, strict: true },
    });
    assert.equal(chat.max_tokens, 9);
    assert.equal(itemsToMessages([]).length, 0);
  });

  it('item ids lead back to their response id', () => {
    const id = newResponseId();
    assert.equal(responseIdOfItem(`msg_${id.slice(5)}_0`), id);
    assert.equal(responseIdOfItem(`fc_${id.slice(5)}_3`), id);
    assert.equal(responseIdOfItem('msg_abc'), undefined);
  });

  it("stream events replay into the SDK's accumulator: text and two tool calls, numbered in order", async () => {
    const req = parseResponsesRequest({ model: 'm', input: 'hi', stream: true });
    const w = new ResponsesStream(req, { id: newResponseId(), created_at: 1 });
    const chunks = [
      chunk({ role: 'assistant', content: 'Hel' }),
      chunk({ content: 'lo' }),
      chunk({
        tool_calls: [
          { index: 0, id: 'call_a', type: 'function', function: { name: 'f', arguments: '{"x"' } },
        ],
      }),
      chunk({
        tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'g', arguments: '{}' } }],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] }),
      chunk({}, 'tool_calls'),
    ];
    const events: ResponseStreamEvent[] = [];
    let stored: string | undefined;
    for await (const e of w.events(
      from(chunks),
      () => ({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }),
      async ({ response }) => {
        stored = response.id;
      },
    ))
      events.push(e);
    events.forEach((e, i) => assert.equal(e.sequence_number, i));
    let snap: Response | undefined;
    for (const e of events) snap = accumulateResponse(e as unknown as SdkEvent, snap);
    assert.ok(snap);
    assert.equal(snap.output_text, 'Hello');
    const calls = snap.output.filter((o) => o.type === 'function_call');
    assert.deepEqual(
      calls.map((c) => (c.type === 'function_call' ? [c.call_id, c.name, c.arguments] : [])),
      [
        ['call_a', 'f', '{"x":1}'],
        ['call_b', 'g', '{}'],
      ],
    );
    const last = events.at(-1) as unknown as { type: string; response: Response };
    assert.equal(last.type, 'response.completed');
    assert.equal(last.response.usage?.total_tokens, 7);
    assert.equal(stored, last.response.id);
    // A later failure continues the numbering.
    const failure = w.failure(new PorticoError('upstream_error', 'cut'));
    const seqs = [...failure.matchAll(/"sequence_number":(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(seqs, [events.length, events.length + 1]);
    assert.match(failure, /^event: error\n/);
    assert.match(failure, /event: response\.failed\n/);
  });
});
