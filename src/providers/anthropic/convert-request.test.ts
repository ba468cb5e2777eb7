import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isPorticoError } from '../../errors/portico-error.js';
import { toAnthropicRequest } from './convert-request.js';

const opts = { defaultMaxTokens: 1000 };

describe('toAnthropicRequest', () => {
  it('lifts system and developer messages into system, keeps turn order', () => {
    const out = toAnthropicRequest(
      {
        model: 'claude',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
          { role: 'user', content: 'Hi' },
        ],
      },
      opts,
    );
    assert.equal(out.system, 'Be brief.\n\nAnswer in French.');
    assert.deepEqual(out.messages, [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);
    assert.equal(out.max_tokens, 1000, 'default max_tokens');
  });

  it('maps images: data: URL -> base64 source, https URL -> url source', () => {
    const out = toAnthropicRequest(
      {
        model: 'm',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
            ],
          },
        ],
      },
      opts,
    );
    assert.deepEqual(out.messages[0]?.content, [
      { type: 'text', text: 'What is this?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    ]);
  });

  it('rejects other image URLs and unknown parts with a param', () => {
    for (const content of [
      [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }],
      [{ type: 'input_audio', input_audio: { data: 'x', format: 'wav' } }],
    ]) {
      assert.throws(
        () => toAnthropicRequest({ model: 'm', messages: [{ role: 'user', content }] }, opts),
        (e) =>
          isPorticoError(e) &&
          e.code === 'invalid_request' &&
          (e.param ?? '').startsWith('messages[0].content[0]'),
      );
    }
  });

  it('maps tools, tool_choice variants and parallel_tool_calls', () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'f', description: 'd', parameters: { type: 'object' } },
      },
    ];
    const base = { model: 'm', messages: [{ role: 'user' as const, content: 'x' }], tools };
    assert.deepEqual(toAnthropicRequest({ ...base, tool_choice: 'auto' }, opts).tool_choice, {
      type: 'auto',
    });
    assert.deepEqual(toAnthropicRequest({ ...base, tool_choice: 'none' }, opts).tool_choice, {
      type: 'none',
    });
    assert.deepEqual(toAnthropicRequest({ ...base, tool_choice: 'required' }, opts).tool_choice, {
      type: 'any',
    });
    assert.deepEqual(
      toAnthropicRequest({ ...base, tool_choice: { type: 'function', function: { name: 'f' } } }, opts)
        .tool_choice,
      { type: 'tool', name: 'f' },
    );
    assert.deepEqual(toAnthropicRequest({ ...base, parallel_tool_calls: false }, opts).tool_choice, {
      type: 'auto',
      disable_parallel_tool_use: true,
    });
    assert.deepEqual(toAnthropicRequest(base, opts).tools, [
      { name: 'f', description: 'd', input_schema: { type: 'object' } },
    ]);
    assert.equal(toAnthropicRequest(base, opts).tool_choice, undefined);
  });

  it('turns assistant tool_calls into tool_use and merges consecutive tool results into one user turn', () => {
    const out = toAnthropicRequest(
      {
        model: 'm',
        messages: [
          { role: 'user', content: 'weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: 'Checking.',
            tool_calls: [
              { id: 'a', type: 'function', function: { name: 'w', arguments: '{"city":"Paris"}' } },
              { id: 'b', type: 'function', function: { name: 'w', arguments: '{"city":"Rome"}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'a', content: '18C' },
          { role: 'tool', tool_call_id: 'b', content: '25C' },
          { role: 'user', content: 'thanks, and?' },
        ],
      },
      opts,
    );
    assert.equal(out.messages.length, 3);
    assert.deepEqual(out.messages[1], {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'a', name: 'w', input: { city: 'Paris' } },
        { type: 'tool_use', id: 'b', name: 'w', input: { city: 'Rome' } },
      ],
    });
    assert.deepEqual(out.messages[2], {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'a', content: [{ type: 'text', text: '18C' }] },
        { type: 'tool_result', tool_use_id: 'b', content: [{ type: 'text', text: '25C' }] },
        { type: 'text', text: 'thanks, and?' },
      ],
    });
  });

  it('maps stop, temperature (clamped), max tokens, user, top_k, upstream model', () => {
    const out = toAnthropicRequest(
      {
        model: 'alias',
        messages: [{ role: 'user', content: 'x' }],
        stop: 'END',
        temperature: 1.7,
        max_completion_tokens: 77,
        max_tokens: 5,
        user: 'u-1',
        top_k: 40,
        top_p: 0.9,
        stream: true,
      },
      { model: 'claude-sonnet-4', defaultMaxTokens: 10 },
    );
    assert.equal(out.model, 'claude-sonnet-4');
    assert.deepEqual(out.stop_sequences, ['END']);
    assert.equal(out.temperature, 1);
    assert.equal(out.max_tokens, 77);
    assert.deepEqual(out.metadata, { user_id: 'u-1' });
    assert.equal(out.top_k, 40);
    assert.equal(out.top_p, 0.9);
    assert.equal(out.stream, true);
    assert.equal(
      toAnthropicRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: -1 }, opts)
        .temperature,
      0,
    );
  });

  it('rejects n > 1, bad tool arguments and a conversation without turns', () => {
    const bad = [
      { model: 'm', messages: [{ role: 'user' as const, content: 'x' }], n: 2 },
      {
        model: 'm',
        messages: [
          {
            role: 'assistant' as const,
            content: null,
            tool_calls: [{ id: 'a', type: 'function' as const, function: { name: 'f', arguments: '[1]' } }],
          },
        ],
      },
      { model: 'm', messages: [{ role: 'system' as const, content: 'only system' }] },
    ];
    for (const req of bad) {
      assert.throws(
        () => toAnthropicRequest(req, opts),
        (e) => isPorticoError(e) && e.code === 'invalid_request' && e.param !== null,
      );
    }
  });
});

describe('toAnthropicRequest tool results', () => {
  it('sends an empty tool result without content', () => {
    const out = toAnthropicRequest(
      {
        model: 'm',
        messages: [
          { role: 'user', content: 'x' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '' } }],
          },
          { role: 'tool', tool_call_id: 'a', content: '' },
        ],
      },
      opts,
    );
    assert.deepEqual(out.messages[1]?.content, [{ type: 'tool_use', id: 'a', name: 'f', input: {} }]);
    assert.deepEqual(out.messages[2]?.content, [{ type: 'tool_result', tool_use_id: 'a' }]);
  });
});
