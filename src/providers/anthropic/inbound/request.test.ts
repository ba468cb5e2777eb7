import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isPorticoError } from '../../../errors/portico-error.js';
import { toAnthropicRequest } from '../convert-request.js';
import { anthropicRequestToOpenAI } from './request.js';

const weather = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

const fullRequest = {
  model: 'portico-model',
  max_tokens: 300,
  system: [{ type: 'text', text: 'Be brief.' }],
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Weather in Paris? And this picture:' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'call the tool', signature: 'sig' },
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { location: 'Paris' } },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18C' }] },
        { type: 'text', text: 'Thanks!' },
      ],
    },
  ],
  tools: [weather],
  tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
  stop_sequences: ['END'],
  temperature: 0.5,
  top_k: 20,
  metadata: { user_id: 'user-9' },
  stream: true,
};

describe('anthropicRequestToOpenAI', () => {
  it('translates a full request', () => {
    assert.deepEqual(anthropicRequestToOpenAI(fullRequest), {
      model: 'portico-model',
      max_tokens: 300,
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Weather in Paris? And this picture:' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
        {
          role: 'assistant',
          content: 'Checking.',
          tool_calls: [
            {
              id: 'toolu_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
            },
          ],
          // Thinking blocks travel with the assistant turn, signatures included.
          thinking_blocks: [{ type: 'thinking', thinking: 'call the tool', signature: 'sig' }],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
        { role: 'user', content: 'Thanks!' },
      ],
      temperature: 0.5,
      top_k: 20,
      stop: ['END'],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather for a city',
            parameters: weather.input_schema,
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      user: 'user-9',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('round-trips through the outbound converter back to the same Anthropic conversation', () => {
    const back = toAnthropicRequest(anthropicRequestToOpenAI(fullRequest), { defaultMaxTokens: 1 });
    assert.equal(back.system, 'Be brief.');
    assert.equal(back.max_tokens, 300);
    assert.deepEqual(back.tool_choice, {
      type: 'tool',
      name: 'get_weather',
      disable_parallel_tool_use: true,
    });
    assert.deepEqual(back.tools, [weather]);
    assert.deepEqual(back.stop_sequences, ['END']);
    assert.deepEqual(back.metadata, { user_id: 'user-9' });
    assert.deepEqual(back.messages, [
      fullRequest.messages[0],
      // Thinking blocks come back first, as Anthropic needs them in later turns.
      fullRequest.messages[1],
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18C' }] },
          { type: 'text', text: 'Thanks!' },
        ],
      },
    ]);
  });

  it('maps tool_choice any/auto/none', () => {
    const base = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], tools: [weather] };
    assert.equal(anthropicRequestToOpenAI({ ...base, tool_choice: { type: 'any' } }).tool_choice, 'required');
    assert.equal(anthropicRequestToOpenAI({ ...base, tool_choice: { type: 'auto' } }).tool_choice, 'auto');
    assert.equal(anthropicRequestToOpenAI({ ...base, tool_choice: { type: 'none' } }).tool_choice, 'none');
  });

  const bad: Array<[string, unknown, string | null]> = [
    ['not an object', [1, 2], null],
    ['no model', { max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, 'model'],
    ['no max_tokens', { model: 'm', messages: [{ role: 'user', content: 'x' }] }, 'max_tokens'],
    ['max_tokens 0', { model: 'm', max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }, 'max_tokens'],
    ['empty messages', { model: 'm', max_tokens: 5, messages: [] }, 'messages'],
    [
      'system role in messages',
      { model: 'm', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] },
      'messages[0].role',
    ],
    [
      'temperature > 1',
      { model: 'm', max_tokens: 5, temperature: 1.5, messages: [{ role: 'user', content: 'x' }] },
      'temperature',
    ],
    [
      'document block',
      {
        model: 'm',
        max_tokens: 5,
        messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }],
      },
      'messages[0].content[0].type',
    ],
    [
      'image with ftp url',
      {
        model: 'm',
        max_tokens: 5,
        messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'ftp://x' } }] }],
      },
      'messages[0].content[0].source.url',
    ],
    [
      'tool_use in user turn',
      {
        model: 'm',
        max_tokens: 5,
        messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'f', input: {} }] }],
      },
      'messages[0].content[0]',
    ],
    [
      'image in tool_result',
      {
        model: 'm',
        max_tokens: 5,
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 'a',
                content: [{ type: 'image', source: { type: 'url', url: 'https://x/y.png' } }],
              },
            ],
          },
        ],
      },
      'messages[0].content[0].content[0]',
    ],
    [
      'tool without schema',
      { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'f' }] },
      'tools[0].input_schema',
    ],
  ];
  it('a missing field says "Field required", as the Messages API does; max_tokens says what it is', () => {
    for (const [body, message] of [
      [
        { model: 'm', messages: [{ role: 'user', content: 'x' }] },
        'max_tokens: Field required: the Messages API needs max_tokens, the most tokens to generate (e.g. "max_tokens": 1024)',
      ],
      [{ max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, 'model: Field required'],
    ] as const)
      assert.throws(
        () => anthropicRequestToOpenAI(body),
        (e) => isPorticoError(e) && e.message === message,
      );
  });

  for (const [name, body, param] of bad) {
    it(`rejects ${name} with invalid_request${param ? ` (param ${param})` : ''}`, () => {
      assert.throws(
        () => anthropicRequestToOpenAI(body),
        (e) => {
          assert.ok(isPorticoError(e));
          assert.equal(e.code, 'invalid_request');
          assert.equal(e.status, 400);
          assert.equal(e.param, param);
          return true;
        },
      );
    });
  }
});
