/**
 * Issue 17 item 4: an OpenAI-compatible backend answers with its own model name; the client gets
 * the alias it asked for in `model` (non-streaming and every stream chunk) and the backend's name
 * in `x-portico-upstream-model`. Checked with the official openai SDK against a fake OpenAI
 * upstream whose model name differs from the alias.
 *
 * A backend's model name that is not printable ASCII (a local model named in Chinese, a control
 * character) goes in the header percent-encoded: Node refuses such a header when the response is
 * written, and with the ledger journal deferring the response (embedded state) and compression off
 * that left responses unsent and threw out of the journal's flush (found in review, 2026-12-07).
 *
 * Embeddings (one call or batches reassembled) and rerank answer with the alias too (review,
 * 2026-12-08: they carried the backend's name), checked against the simulator over HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import {
  ACME_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
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

describe('a backend model name that is not printable ASCII', () => {
  let fake: FakeServer;
  let gw: TestGateway;
  let client: OpenAI;
  const dataDir = mkdtempSync(join(tmpdir(), 'portico-upstream-model-'));
  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startTestGateway(
      demoConfig({
        // The embedded state has the ledger journal (responses wait for its write); compression off
        // leaves no later onSend hook to catch a throwing writeHead.
        server: { host: '127.0.0.1', port: 0, compression: { enabled: false } },
        state: { kind: 'embedded', data_dir: dataDir },
        tenants: [{ id: 'acme-corp', api_keys: [{ value: ACME_KEY }] }],
        models: {
          local: {
            backends: [
              { id: 'fake', provider: 'openai', base_url: `${fake.url}/v1`, model: '模型-7b\u0007' },
            ],
            health_check: { enabled: false },
          },
        },
      }),
    );
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: ACME_KEY, maxRetries: 0, timeout: 10_000 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is percent-encoded in the header; every answer and stream is sent (30 at once)', async () => {
    const encoded = encodeURIComponent('模型-7b\u0007');
    const answers = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        if (i % 2 === 0) {
          const { data, response } = await client.chat.completions
            .create({ model: 'local', messages: [{ role: 'user', content: `q${i}` }] })
            .withResponse();
          assert.equal(response.headers.get('x-portico-upstream-model'), encoded);
          assert.equal(data.model, 'local');
          return data.choices[0]?.message.content;
        }
        const { data: stream, response } = await client.chat.completions
          .create({ model: 'local', messages: [{ role: 'user', content: `q${i}` }], stream: true })
          .withResponse();
        assert.equal(response.headers.get('x-portico-upstream-model'), encoded);
        let text = '';
        for await (const c of stream) {
          assert.equal(c.model, 'local');
          text += c.choices[0]?.delta.content ?? '';
        }
        return text;
      }),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 30 }, (_, i) => `ANSWER: q${i}`),
    );
  });
});

// Review (2026-12-08): embeddings and rerank answered with the backend's model name and no
// x-portico-upstream-model header, though every answer is to carry the alias (docs/providers.md).
describe('embeddings and rerank answer with the alias too', () => {
  let sim: TestSim;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    sim = await startTestSim({ sim: { embedding_dimensions: 4 } });
    const backends = [{ id: 'up', provider: 'vllm', base_url: sim.baseURL, model: 'bge-upstream' }];
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', api_keys: [{ value: ACME_KEY }] }],
        models: {
          vectors: { backends, embeddings_batch_size: 2, health_check: { enabled: false } },
        },
      }),
    );
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: ACME_KEY, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it('embeddings, one call and reassembled batches: the alias, the upstream name in a header', async () => {
    for (const input of ['one input', ['a', 'b', 'c', 'd', 'e']]) {
      const { data, response } = await client.embeddings.create({ model: 'vectors', input }).withResponse();
      assert.equal(data.model, 'vectors', JSON.stringify(input));
      assert.equal(response.headers.get('x-portico-upstream-model'), 'bge-upstream');
      assert.equal(data.data.length, Array.isArray(input) ? 5 : 1);
    }
  });

  it('rerank: the alias, the upstream name in a header', async () => {
    const res = await fetch(`${gw.baseURL}/rerank`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'vectors', query: 'q', documents: ['a', 'b'] }),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { model: string }).model, 'vectors');
    assert.equal(res.headers.get('x-portico-upstream-model'), 'bge-upstream');
  });
});
