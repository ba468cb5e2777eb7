import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromAnthropicResponse, mapStopReason, mapUsage } from './convert-response.js';
import type { AnthropicMessage } from './types.js';

function fixture(name: string): AnthropicMessage {
  const url = new URL(`../../../test/fixtures/providers/anthropic/${name}.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { body: AnthropicMessage }).body;
}

describe('fromAnthropicResponse', () => {
  it('maps text and tool_use blocks, stop reason, usage', () => {
    const res = fromAnthropicResponse(fixture('tool-call'), { model: 'alias', created: 1 });
    assert.deepEqual(res, {
      id: 'msg_01Aq9w938a90dw8q',
      object: 'chat.completion',
      created: 1,
      model: 'alias',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: "I'll check the weather in Paris.",
            tool_calls: [
              {
                id: 'toolu_01A09q90qw90lq917835lq9',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"location":"Paris","unit":"celsius"}' },
              },
            ],
          },
          finish_reason: 'tool_calls',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 50, completion_tokens: 20, total_tokens: 70 },
    });
  });

  it('counts cache read and creation tokens into prompt_tokens and reports cached_tokens', () => {
    const res = fromAnthropicResponse(fixture('usage-cached'));
    assert.equal(res.choices[0]?.finish_reason, 'length');
    assert.deepEqual(res.usage, {
      prompt_tokens: 125,
      completion_tokens: 3,
      total_tokens: 128,
      prompt_tokens_details: { cached_tokens: 100, cache_creation_tokens: 20 },
      cache_read_input_tokens: 100,
      cache_creation_input_tokens: 20,
    });
  });

  it('maps every stop reason', () => {
    assert.equal(mapStopReason('end_turn'), 'stop');
    assert.equal(mapStopReason('stop_sequence'), 'stop');
    assert.equal(mapStopReason('max_tokens'), 'length');
    assert.equal(mapStopReason('tool_use'), 'tool_calls');
    assert.equal(mapStopReason('refusal'), 'content_filter');
    assert.equal(mapStopReason('pause_turn'), 'stop');
    assert.equal(mapStopReason(null), null);
    assert.deepEqual(mapUsage({ input_tokens: 3, output_tokens: 4 }), {
      prompt_tokens: 3,
      completion_tokens: 4,
      total_tokens: 7,
    });
  });

  it('drops thinking blocks and gives null content when there is no text', () => {
    const res = fromAnthropicResponse({
      ...fixture('text'),
      content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }],
    });
    assert.equal(res.choices[0]?.message.content, null);
    assert.equal(res.choices[0]?.message.tool_calls, undefined);
  });
});
