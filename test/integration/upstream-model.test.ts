/**
 * Issue 17 item 4: an OpenAI-compatible backend answers with its own model name; the client gets
 * the alias it asked for in `model` (non-streaming and every stream chunk) and the backend's name
 * in `x-portico-upstream-model`. Checked with the official openai SDK against a fake OpenAI
 * upstream whose model name differs from the alias.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { startFakeOpenAI, type FakeServer } from '../helpers/fake-openai.js';

describe('model alias on openai-kind backends', () => {
  let fake: FakeServer;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', api_keys: [{ value: ACME_KEY }] }],
        models: {
          'team-chat': {
            backends: [
              { id: 'fake', provider: 'openai', base_url: `${fake.url}/v1`, model: 'vendor-model-2025' },
            ],
            health_check: { enabled: false },
          },
        },
      }),
    );
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: ACME_KEY, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it('non-streaming: model is the alias, the upstream name is in a header', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'team-chat', messages: [{ role: 'user', content: 'hello' }] })
      .withResponse();
    assert.equal(data.model, 'team-chat');
    assert.equal(response.headers.get('x-portico-upstream-model'), 'vendor-model-2025');
    assert.equal(data.choices[0]?.message.content, 'ANSWER: hello');
  });

  it('streaming: every chunk carries the alias, the upstream name is in a header', async () => {
    for (const include_usage of [true, false]) {
      const { data: stream, response } = await client.chat.completions
        .create({
          model: 'team-chat',
          messages: [{ role: 'user', content: 'hello there' }],
          stream: true,
          ...(include_usage ? { stream_options: { include_usage } } : {}),
        })
        .withResponse();
      assert.equal(response.headers.get('x-portico-upstream-model'), 'vendor-model-2025');
      let text = '';
      let chunks = 0;
      let usage: number | undefined;
      for await (const c of stream) {
        chunks++;
        assert.equal(c.model, 'team-chat');
        text += c.choices[0]?.delta.content ?? '';
        if (c.usage) usage = c.usage.total_tokens;
      }
      assert.ok(chunks > 0);
      assert.equal(text, 'ANSWER: hello there');
      assert.equal(usage !== undefined, include_usage);
    }
  });
});
