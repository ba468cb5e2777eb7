/**
 * Checks the OpenAI-protocol fixtures and the fake upstream's openai mode with the official
 * `openai` SDK, so the OpenAI-compatible adapter's conformance registration starts from fixtures
 * known to encode the CANONICAL answers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { CANONICAL, WEATHER_TOOL } from './provider-conformance.js';

describe('openai fixtures replayed by the fake upstream (official openai SDK)', () => {
  let fake: FakeUpstream;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeUpstream({
      protocol: 'openai',
      fixturesDir: fileURLToPath(new URL('../fixtures/providers/openai/', import.meta.url)),
    });
    client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'sk-test', maxRetries: 0, timeout: 5000 });
  });
  after(() => fake.close());

  const user = [{ role: 'user' as const, content: 'Say hello.' }];

  it('text', async () => {
    const r = await client.chat.completions.create({ model: 'text', messages: user });
    assert.equal(r.choices[0]?.message.content, CANONICAL.text.content);
    assert.equal(r.usage?.total_tokens, CANONICAL.text.usage.total_tokens);
  });

  it('stream-text with usage', async () => {
    const s = await client.chat.completions.create({
      model: 'stream-text',
      messages: user,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: unknown;
    for await (const c of s) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, CANONICAL.text.content);
    assert.equal((usage as { prompt_tokens: number }).prompt_tokens, CANONICAL.text.usage.prompt_tokens);
  });

  it('stream-tool-call fragments reassemble', async () => {
    const s = client.chat.completions.stream({
      model: 'stream-tool-call',
      messages: user,
      tools: [WEATHER_TOOL],
      stream_options: { include_usage: true },
    });
    const final = await s.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, CANONICAL.toolCall.name);
    assert.deepEqual(JSON.parse(call.function.arguments), CANONICAL.toolCall.arguments);
  });

  it('error-rate-limit', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'error-rate-limit', messages: user }),
      (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError);
        assert.equal(e.headers.get('retry-after'), '7');
        return true;
      },
    );
  });

  it('records what it received and refuses what the API would', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'text', messages: [] }),
      (e) => e instanceof OpenAI.BadRequestError,
    );
    assert.ok(fake.requests.at(-1)?.validationError);
    assert.equal(fake.requests.at(-1)?.headers['authorization'], 'Bearer sk-test');
  });
});
