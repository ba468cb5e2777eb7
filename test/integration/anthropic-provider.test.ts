/**
 * AnthropicProvider behaviour beyond the conformance table: pooled keep-alive connections,
 * timeouts, unreachable upstreams, legacy completions, unsupported operations, early exit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { isPorticoError } from '../../src/errors/portico-error.js';
import type { CompletionChunk } from '../../src/providers/openai-types.js';
import type { Provider, ProviderCallContext } from '../../src/providers/spec.js';
import { createAnthropicProvider } from '../../src/providers/anthropic/index.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';

const ctx = (extra: Partial<ProviderCallContext> = {}): ProviderCallContext => ({
  signal: new AbortController().signal,
  requestId: 'r',
  correlationId: 'c',
  ...extra,
});
const hello = [{ role: 'user' as const, content: 'Say hello.' }];

describe('AnthropicProvider', () => {
  let fake: FakeUpstream;
  let provider: Provider;
  before(async () => {
    fake = await startFakeUpstream({
      protocol: 'anthropic',
      fixturesDir: fileURLToPath(new URL('../fixtures/providers/anthropic/', import.meta.url)),
    });
    // baseUrl with a trailing /v1 is accepted too.
    provider = createAnthropicProvider({
      id: 'a',
      baseUrl: `${fake.baseUrl}/v1/`,
      apiKey: 'k',
      model: 'text',
      connections: 2,
    });
  });
  after(async () => {
    await provider.close();
    await fake.close();
  });

  it('reuses pooled keep-alive connections for sequential calls and sends the configured model', async () => {
    const before = fake.requests.length;
    for (let i = 0; i < 5; i++) await provider.chat({ model: 'alias', messages: hello }, ctx());
    const recs = fake.requests.slice(before);
    // 5 calls, at most `connections` (2) sockets: keep-alive connections are pooled and reused.
    assert.ok(new Set(recs.map((r) => r.remotePort)).size <= 2, 'pooled keep-alive connections');
    assert.ok(recs.every((r) => (r.body as { model: string }).model === 'text'));
    assert.ok(
      recs.every((r) => (r.body as { max_tokens: number }).max_tokens === 4096),
      'default max_tokens',
    );
  });

  it('reports the requested model name, not the upstream one', async () => {
    const res = await provider.chat({ model: 'alias', messages: hello }, ctx());
    assert.equal(res.model, 'alias');
  });

  it('serves legacy completions as one user turn', async () => {
    const res = await provider.completion({ model: 'alias', prompt: 'Say hello.', max_tokens: 9 }, ctx());
    assert.equal(res.object, 'text_completion');
    assert.equal(res.choices[0]?.text, 'Hello! How can I help you today?');
    const sent = fake.requests.at(-1)?.body as { messages: unknown; max_tokens: number };
    assert.deepEqual(sent.messages, [{ role: 'user', content: [{ type: 'text', text: 'Say hello.' }] }]);
    assert.equal(sent.max_tokens, 9);
    await assert.rejects(
      provider.completion({ model: 'alias', prompt: ['a', 'b'] }, ctx()),
      (e) => isPorticoError(e) && e.code === 'invalid_request' && e.param === 'prompt',
    );
  });

  it('streams legacy completions', async () => {
    const p = createAnthropicProvider({ id: 'a2', baseUrl: fake.baseUrl, apiKey: 'k' });
    try {
      const s = await p.completionStream(
        { model: 'stream-text', prompt: 'Say hello.', stream: true, stream_options: { include_usage: true } },
        ctx(),
      );
      const chunks: CompletionChunk[] = [];
      for await (const c of s) chunks.push(c);
      assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'Hello! How can I help you today?');
      assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'stop');
      assert.equal(chunks.at(-1)?.usage?.total_tokens, 22);
    } finally {
      await p.close();
    }
  });

  it('refuses embeddings and rerank with unsupported_operation', async () => {
    await assert.rejects(
      provider.embeddings({ model: 'x', input: 'a' }, ctx()),
      (e) => isPorticoError(e) && e.code === 'unsupported_operation',
    );
    await assert.rejects(
      provider.rerank({ model: 'x', query: 'q', documents: ['a'] }, ctx()),
      (e) => isPorticoError(e) && e.code === 'unsupported_operation' && e.status === 501,
    );
  });

  it('closes the upstream connection when the consumer stops reading early', async () => {
    const p = createAnthropicProvider({ id: 'a3', baseUrl: fake.baseUrl, apiKey: 'k' });
    try {
      const closes = fake.clientCloses;
      const s = await p.chatStream({ model: 'stream-hang', messages: hello, stream: true }, ctx());
      for await (const c of s) {
        if (c.choices[0]?.delta.content === 'Hello') break;
      }
      await fake.waitForClientClose(closes + 1, 5000);
    } finally {
      await p.close();
    }
  });

  it('rejects at once when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await assert.rejects(
      provider.chat({ model: 'alias', messages: hello }, ctx({ signal: ac.signal })),
      /gone/,
    );
  });
});

describe('AnthropicProvider against broken upstreams', () => {
  let silent: Server;
  let port: number;
  before(async () => {
    // Accepts connections and never answers.
    silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const a = silent.address();
    assert.ok(a && typeof a === 'object');
    port = a.port;
  });
  after(async () => {
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  });

  it('maps a per-attempt timeout to upstream_timeout', async () => {
    const p = createAnthropicProvider({ id: 'slow', baseUrl: `http://127.0.0.1:${port}`, apiKey: 'k' });
    try {
      await assert.rejects(
        p.chat({ model: 'm', messages: hello }, ctx({ timeoutMs: 50 })),
        (e) => isPorticoError(e) && e.code === 'upstream_timeout' && e.status === 504,
      );
      const h = await p.health(AbortSignal.timeout(50));
      assert.equal(h.ok, false);
    } finally {
      await p.close();
    }
  });

  it('maps a refused connection to upstream_unavailable', async () => {
    // Find a port nobody listens on: open and close a server.
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const a = tmp.address();
    assert.ok(a && typeof a === 'object');
    await new Promise((r) => tmp.close(r));
    const p = createAnthropicProvider({ id: 'down', baseUrl: `http://127.0.0.1:${a.port}`, apiKey: 'k' });
    try {
      await assert.rejects(
        p.chat({ model: 'm', messages: hello }, ctx()),
        (e) => isPorticoError(e) && e.code === 'upstream_unavailable' && /down/.test(e.message),
      );
    } finally {
      await p.close();
    }
  });
});
