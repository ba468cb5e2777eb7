/**
 * Client compatibility: the official `@anthropic-ai/sdk`, unchanged, against the gateway's
 * `/v1/messages`, on every provider kind. On an Anthropic backend the fake upstream shows that
 * cache_control, thinking, anthropic-beta/-version, metadata, stop_sequences and top_k arrive.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { PROVIDER_COLUMNS } from '../../scripts/clients-table.js';
import { ClientCases, KEY, MODELS, startSuite, type Suite } from './support/suite.js';
import { FAKE_SIGNATURE, FAKE_THINKING } from './support/fake-anthropic.js';

let s: Suite;
let client: Anthropic;
before(async () => {
  s = await startSuite();
  client = new Anthropic({ baseURL: s.url, apiKey: KEY, maxRetries: 0 });
});
after(() => s.close());

const cases = new ClientCases('anthropic-sdk', '@anthropic-ai/sdk (Messages API)');

const weatherTool = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: {
    type: 'object' as const,
    properties: { city: { type: 'string' } },
    required: ['city'],
  },
};

for (const p of PROVIDER_COLUMNS) {
  const model = MODELS[p];
  cases.case('messages.create', p, async () => {
    const m = await client.messages.create({
      model,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    assert.equal(m.type, 'message');
    assert.equal(m.model, model);
    assert.ok(m.content.some((b) => b.type === 'text' && b.text.length > 0));
    assert.ok(m.usage.output_tokens > 0);
  });

  cases.case('stream() / finalMessage()', p, async () => {
    const stream = client.messages.stream({
      model,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    const m = await stream.finalMessage();
    assert.ok(text.length > 0);
    assert.equal(m.content.find((b) => b.type === 'text')?.type, 'text');
    assert.ok(m.usage.output_tokens > 0);
  });

  cases.case('tools (tool_use, tool_result turn)', p, async () => {
    const first = await client.messages.create({
      model,
      max_tokens: 64,
      tools: [weatherTool],
      messages: [{ role: 'user', content: 'Use get_weather for Paris.' }],
    });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use && use.type === 'tool_use' && use.name === 'get_weather');
    const second = await client.messages.create({
      model,
      max_tokens: 64,
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'Use get_weather for Paris.' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18C, sunny' }] },
      ],
    });
    assert.equal(second.stop_reason, 'end_turn');
  });

  cases.case('countTokens', p, async () => {
    const r = await client.messages.countTokens({
      model,
      messages: [{ role: 'user', content: 'How many tokens is this?' }],
    });
    assert.ok(r.input_tokens > 0);
    if (p === 'anthropic')
      assert.equal(s.anthropic.last('/v1/messages/count_tokens').body.model, 'claude-fake');
  });

  cases.case('models.list / retrieve', p, async () => {
    const page = await client.models.list();
    assert.ok(page.data.some((m) => m.id === model && m.type === 'model'));
    const one = await client.models.retrieve(model);
    assert.equal(one.id, model);
  });
}

cases.case('thinking (blocks, signatures, deltas)', 'anthropic', async () => {
  const params = {
    model: MODELS.anthropic,
    max_tokens: 2048,
    thinking: { type: 'enabled' as const, budget_tokens: 1024 },
    messages: [{ role: 'user' as const, content: 'Think, then answer.' }],
  };
  const m = await client.messages.create(params);
  const t = m.content[0];
  assert.ok(t?.type === 'thinking' && t.thinking === FAKE_THINKING && t.signature === FAKE_SIGNATURE);
  assert.deepEqual(s.anthropic.last().body.thinking, params.thinking);
  const stream = client.messages.stream(params);
  let thinking = '';
  stream.on('thinking', (d) => {
    thinking += d;
  });
  const final = await stream.finalMessage();
  const ft = final.content[0];
  assert.equal(thinking, FAKE_THINKING);
  assert.ok(ft?.type === 'thinking' && ft.signature === FAKE_SIGNATURE);
  // The signed block goes back upstream in the next turn, unchanged.
  await client.messages.create({
    ...params,
    messages: [
      ...params.messages,
      { role: 'assistant', content: final.content },
      { role: 'user', content: 'And?' },
    ],
  });
  const sent = s.anthropic.last().body.messages as Array<{ content: unknown }>;
  assert.deepEqual((sent[1]?.content as unknown[])[0], {
    type: 'thinking',
    thinking: FAKE_THINKING,
    signature: FAKE_SIGNATURE,
  });
});
cases.notApplicable(
  'thinking (blocks, signatures, deltas)',
  'sim',
  'no reasoning model to think with; a reasoning_content answer becomes a thinking block',
);
cases.notApplicable(
  'thinking (blocks, signatures, deltas)',
  'openai-compatible',
  '`thinking` is not sent to OpenAI-protocol servers; their `reasoning_content` comes back as a thinking block (no signature)',
);

cases.case(
  'cache_control, beta/version headers, metadata, stop_sequences, top_k reach the upstream',
  'anthropic',
  async () => {
    const m = await client.messages.create(
      {
        model: MODELS.anthropic,
        max_tokens: 64,
        system: [
          { type: 'text', text: 'A long, cached system prompt.', cache_control: { type: 'ephemeral' } },
        ],
        tools: [{ ...weatherTool, cache_control: { type: 'ephemeral' } }],
        messages: [
          {
            role: 'user',
            content: [{ type: 'text', text: 'Hello there.', cache_control: { type: 'ephemeral' } }],
          },
        ],
        metadata: { user_id: 'user-42' },
        stop_sequences: ['END'],
        // top_k is an Anthropic API field this SDK version's types omit
        ...({ top_k: 5 } as object),
      },
      { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31', 'anthropic-version': '2023-06-01' } },
    );
    const got = s.anthropic.last();
    assert.deepEqual(got.body.system, [
      { type: 'text', text: 'A long, cached system prompt.', cache_control: { type: 'ephemeral' } },
    ]);
    assert.deepEqual((got.body.tools as Array<Record<string, unknown>>)[0]?.cache_control, {
      type: 'ephemeral',
    });
    assert.deepEqual(got.body.messages, [
      {
        role: 'user',
        content: [{ type: 'text', text: 'Hello there.', cache_control: { type: 'ephemeral' } }],
      },
    ]);
    assert.deepEqual(got.body.metadata, { user_id: 'user-42' });
    assert.deepEqual(got.body.stop_sequences, ['END']);
    assert.equal(got.body.top_k, 5);
    assert.equal(got.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
    assert.equal(got.headers['anthropic-version'], '2023-06-01');
    // Prompt-cache usage comes back in Anthropic's own fields.
    assert.equal(m.usage.cache_creation_input_tokens, 7);
    assert.equal(m.usage.cache_read_input_tokens, 5);
  },
);
cases.notApplicable(
  'cache_control, beta/version headers, metadata, stop_sequences, top_k reach the upstream',
  'openai-compatible',
  'cache_control and the anthropic-* headers are Anthropic-only and not sent; metadata.user_id -> user, stop_sequences -> stop, top_k kept (dropped by presets whose upstream rejects it)',
);
cases.notApplicable(
  'cache_control, beta/version headers, metadata, stop_sequences, top_k reach the upstream',
  'sim',
  'in-process: nothing goes upstream',
);

cases.finish();
