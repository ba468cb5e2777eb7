import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PorticoError, isPorticoError } from '../../../errors/portico-error.js';
import type { ChatCompletionResponse } from '../../openai-types.js';
import { openAIErrorToAnthropic } from './error.js';
import { anthropicRequestToOpenAI } from './request.js';
import { openAIResponseToAnthropic } from './response.js';

function fixture(name: string): ChatCompletionResponse {
  const url = new URL(`../../../../test/fixtures/providers/openai/${name}.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { body: ChatCompletionResponse }).body;
}

describe('openAIResponseToAnthropic', () => {
  it('round trip: Anthropic request -> OpenAI -> Anthropic-shaped text response', () => {
    const req = anthropicRequestToOpenAI({
      model: 'alias',
      max_tokens: 20,
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    assert.equal(req.messages[0]?.content, 'Say hello.');
    const msg = openAIResponseToAnthropic(fixture('text'), { model: req.model });
    assert.deepEqual(msg, {
      id: 'msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT',
      type: 'message',
      role: 'assistant',
      model: 'alias',
      content: [{ type: 'text', text: 'Hello! How can I help you today?' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 12, output_tokens: 10 },
    });
  });

  it('turns tool_calls into tool_use blocks with parsed input', () => {
    const msg = openAIResponseToAnthropic(fixture('tool-call'));
    assert.equal(msg.stop_reason, 'tool_use');
    assert.deepEqual(msg.content, [
      {
        type: 'tool_use',
        id: 'call_12345xyz',
        name: 'get_weather',
        input: { location: 'Paris', unit: 'celsius' },
      },
    ]);
    assert.deepEqual(msg.usage, { input_tokens: 50, output_tokens: 20 });
  });

  it('splits cached tokens out of prompt_tokens', () => {
    const r = fixture('text');
    const msg = openAIResponseToAnthropic({
      ...r,
      usage: {
        prompt_tokens: 100,
        completion_tokens: 5,
        total_tokens: 105,
        prompt_tokens_details: { cached_tokens: 64 },
      },
    });
    assert.deepEqual(msg.usage, {
      input_tokens: 36,
      output_tokens: 5,
      cache_read_input_tokens: 64,
      cache_creation_input_tokens: 0,
    });
  });

  it('refuses tool arguments that are not a JSON object (upstream_error)', () => {
    const r = fixture('tool-call');
    const bad = structuredClone(r);
    const call = bad.choices[0]?.message.tool_calls?.[0];
    assert.ok(call);
    call.function.arguments = '{"location": "Par';
    assert.throws(
      () => openAIResponseToAnthropic(bad),
      (e) => isPorticoError(e) && e.code === 'upstream_error',
    );
  });
});

describe('openAIErrorToAnthropic', () => {
  const table: Array<[PorticoError, string]> = [
    [new PorticoError('invalid_request', 'bad'), 'invalid_request_error'],
    [new PorticoError('invalid_api_key', 'no key'), 'authentication_error'],
    [new PorticoError('permission_denied', 'no'), 'permission_error'],
    [new PorticoError('model_not_found', 'no model'), 'not_found_error'],
    [new PorticoError('payload_too_large', 'big'), 'request_too_large'],
    [new PorticoError('rate_limit_exceeded', 'slow down'), 'rate_limit_error'],
    [new PorticoError('insufficient_quota', 'spent'), 'rate_limit_error'],
    [new PorticoError('internal_error', 'bug'), 'api_error'],
    [new PorticoError('upstream_error', 'bad backend'), 'api_error'],
    [new PorticoError('upstream_unavailable', 'down'), 'overloaded_error'],
    [new PorticoError('upstream_timeout', 'slow'), 'timeout_error'],
    [new PorticoError('unsupported_operation', 'no'), 'invalid_request_error'],
  ];
  for (const [err, type] of table) {
    it(`${err.code} -> ${type}`, () => {
      assert.deepEqual(openAIErrorToAnthropic(err), { type: 'error', error: { type, message: err.message } });
    });
  }
  it('reads OpenAI error bodies and hides unknown errors', () => {
    assert.deepEqual(
      openAIErrorToAnthropic({ error: { message: 'm', type: 'x', code: 'model_not_found' } }, 404),
      {
        type: 'error',
        error: { type: 'not_found_error', message: 'm' },
      },
    );
    assert.deepEqual(openAIErrorToAnthropic(new Error('secret stack detail')), {
      type: 'error',
      error: { type: 'api_error', message: 'Internal error.' },
    });
  });
});
