/**
 * Runs the provider conformance table (provider-conformance.ts) against every adapter registered
 * by a module in ./providers/ (each module calls defineProviderConformance). Every case talks to
 * a real fake upstream over loopback; no API keys, no network.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { isPorticoError, type PorticoError } from '../../src/errors/portico-error.js';
import type { ChatCompletionChunk } from '../../src/providers/openai-types.js';
import type { Provider, ProviderCallContext } from '../../src/providers/spec.js';
import { countsAgainstBackend, isRetryable } from '../../src/pipeline/dispatch.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import {
  CANONICAL,
  CASE_FIXTURES,
  CONFORMANCE_CASES,
  ERROR_CASES,
  canonicalRequest,
  registeredProviderConformance,
  type ConformanceCase,
  type ProviderConformanceDef,
} from './provider-conformance.js';

const registrations = fileURLToPath(new URL('./providers/', import.meta.url));
for (const f of readdirSync(registrations).sort()) {
  if (f.endsWith('.ts') && !f.endsWith('.d.ts')) await import(pathToFileURL(join(registrations, f)).href);
}

const STEP_LIMIT = 1000;

function ctxFor(
  testCase: ConformanceCase,
  signal: AbortSignal = new AbortController().signal,
): ProviderCallContext {
  return {
    signal,
    requestId: `req-${testCase}`,
    correlationId: `corr-${testCase}`,
    headers: { 'x-fixture': CASE_FIXTURES[testCase], 'x-correlation-id': `corr-${testCase}` },
  };
}

async function collect(it: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of it) {
    out.push(c);
    if (out.length > STEP_LIMIT) throw new Error('stream did not end within the step limit');
  }
  return out;
}

function expectPortico(e: unknown, code: string): PorticoError {
  assert.ok(isPorticoError(e), `expected a PorticoError(${code}), got ${String(e)}`);
  assert.equal(e.code, code, `expected code ${code}, got ${e.code}: ${e.message}`);
  return e;
}

/**
 * What dispatch makes of an adapter's error: whether another attempt is made, whether it counts
 * against the backend's circuit breaker, and that the error names the backend that failed.
 */
function expectVerdict(
  e: PorticoError,
  provider: Provider,
  want: { retry: boolean; against: boolean; class?: string },
): void {
  assert.ok(e.upstream, `${e.code} says which backend failed how (upstream): ${e.message}`);
  assert.equal(e.upstream.backend, provider.id);
  if (want.class !== undefined) assert.equal(e.upstream.class, want.class);
  assert.equal(isRetryable(e), want.retry, `retryable: ${JSON.stringify(e.upstream)}`);
  assert.equal(
    countsAgainstBackend(e),
    want.against,
    `counts against the backend: ${JSON.stringify(e.upstream)}`,
  );
}

/** A loopback port nobody listens on (a server opened and closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A base URL for `def.create` on the same origin shape as the fake's (its baseUrl's path kept). */
function baseUrlOn(fakeBaseUrl: string, port: number): string {
  const u = new URL(fakeBaseUrl);
  u.port = String(port);
  return u.toString().replace(/\/$/, '');
}

function defineSuite(def: ProviderConformanceDef): void {
  describe(`provider conformance: ${def.name}`, () => {
    let fake: FakeUpstream;
    let provider: Provider;
    let seen = 0;

    before(async () => {
      fake = await startFakeUpstream({ protocol: def.protocol, fixturesDir: def.fixturesDir });
      provider = def.create(fake.baseUrl);
    });
    after(async () => {
      await provider?.close();
      await fake?.close();
    });

    /** The requests the upstream got during this case; none may have failed protocol validation. */
    function received(testCase: ConformanceCase): void {
      const reqs = fake.requests.slice(seen);
      seen = fake.requests.length;
      for (const r of reqs) {
        assert.equal(
          r.validationError,
          undefined,
          `upstream refused the adapter's request: ${r.validationError}`,
        );
        def.checkRequest?.(testCase, r);
      }
    }

    const cases: Record<ConformanceCase, () => Promise<void>> = {
      text: async () => {
        const res = await provider.chat(canonicalRequest('text'), ctxFor('text'));
        assert.equal(res.object, 'chat.completion');
        assert.equal(res.choices.length, 1);
        assert.equal(res.choices[0]?.message.role, 'assistant');
        assert.equal(res.choices[0]?.message.content, CANONICAL.text.content);
        assert.equal(res.choices[0]?.finish_reason, 'stop');
        assert.deepEqual(pickUsage(res.usage), CANONICAL.text.usage);
        received('text');
      },
      'multi-turn': async () => {
        const res = await provider.chat(canonicalRequest('multi-turn'), ctxFor('multi-turn'));
        assert.equal(res.choices[0]?.message.content, CANONICAL.multiTurn.content);
        assert.equal(res.choices[0]?.finish_reason, 'stop');
        assert.deepEqual(pickUsage(res.usage), CANONICAL.multiTurn.usage);
        received('multi-turn');
      },
      'tool-call': async () => {
        const res = await provider.chat(canonicalRequest('tool-call'), ctxFor('tool-call'));
        const choice = res.choices[0];
        assert.equal(choice?.finish_reason, 'tool_calls');
        const calls = choice?.message.tool_calls ?? [];
        assert.equal(calls.length, 1);
        assert.ok(calls[0] && calls[0].id.length > 0, 'tool call id');
        assert.equal(calls[0]?.type, 'function');
        assert.equal(calls[0]?.function.name, CANONICAL.toolCall.name);
        assert.deepEqual(JSON.parse(calls[0]?.function.arguments ?? 'null'), CANONICAL.toolCall.arguments);
        assert.deepEqual(pickUsage(res.usage), CANONICAL.toolCall.usage);
        received('tool-call');
      },
      'tool-result-turn': async () => {
        const res = await provider.chat(canonicalRequest('tool-result-turn'), ctxFor('tool-result-turn'));
        assert.equal(res.choices[0]?.message.content, CANONICAL.toolResult.content);
        assert.deepEqual(pickUsage(res.usage), CANONICAL.toolResult.usage);
        received('tool-result-turn');
      },
      'stream-text': async () => {
        const stream = await provider.chatStream(canonicalRequest('stream-text'), ctxFor('stream-text'));
        const chunks = await collect(stream);
        assert.ok(chunks.length >= 3, 'several chunks');
        for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
        assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
        const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
        assert.equal(text, CANONICAL.text.content);
        const finishes = chunks
          .flatMap((c) => c.choices.map((ch) => ch.finish_reason))
          .filter((f) => f !== null);
        assert.deepEqual(finishes, ['stop']);
        const last = chunks[chunks.length - 1];
        assert.deepEqual(last?.choices, [], 'usage arrives in a final chunk with no choices');
        assert.deepEqual(pickUsage(last?.usage ?? undefined), CANONICAL.text.usage);
        assert.equal(chunks.filter((c) => c.usage).length, 1, 'usage exactly once');
        received('stream-text');
      },
      'stream-tool-call': async () => {
        const stream = await provider.chatStream(
          canonicalRequest('stream-tool-call'),
          ctxFor('stream-tool-call'),
        );
        const chunks = await collect(stream);
        const calls = new Map<number, { id?: string; name?: string; args: string; fragments: number }>();
        for (const c of chunks) {
          for (const tc of c.choices[0]?.delta.tool_calls ?? []) {
            const cur = calls.get(tc.index) ?? { args: '', fragments: 0 };
            if (tc.id !== undefined) cur.id = tc.id;
            if (tc.function?.name !== undefined) cur.name = tc.function.name;
            if (tc.function?.arguments) {
              cur.args += tc.function.arguments;
              cur.fragments++;
            }
            calls.set(tc.index, cur);
          }
        }
        assert.deepEqual([...calls.keys()], [0], 'one tool call at index 0');
        const call = calls.get(0);
        assert.ok(call?.id, 'tool call id in the first delta');
        assert.equal(call?.name, CANONICAL.toolCall.name);
        assert.ok((call?.fragments ?? 0) >= 2, 'arguments arrive in fragments');
        assert.deepEqual(
          JSON.parse(call?.args ?? 'null'),
          CANONICAL.toolCall.arguments,
          'fragments reassemble to the same JSON',
        );
        const finishes = chunks
          .flatMap((c) => c.choices.map((ch) => ch.finish_reason))
          .filter((f) => f !== null);
        assert.deepEqual(finishes, ['tool_calls']);
        assert.deepEqual(pickUsage(chunks[chunks.length - 1]?.usage ?? undefined), CANONICAL.toolCall.usage);
        received('stream-tool-call');
      },
      'stream-error-status': async () => {
        // The upstream refuses before streaming: chatStream itself rejects (still retryable by the router).
        await assert.rejects(
          provider.chatStream(canonicalRequest('stream-error-status'), ctxFor('stream-error-status')),
          (e) => {
            expectVerdict(expectPortico(e, 'rate_limit_exceeded'), provider, { retry: true, against: false });
            return true;
          },
        );
        received('stream-error-status');
      },
      'stream-error-event': async () => {
        const stream = await provider.chatStream(
          canonicalRequest('stream-error-event'),
          ctxFor('stream-error-event'),
        );
        let text = '';
        await assert.rejects(
          (async () => {
            for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
          })(),
          (e) => {
            // Mid-stream "overloaded": not retried once bytes went out, but it counts against the backend.
            expectVerdict(expectPortico(e, 'upstream_unavailable'), provider, {
              retry: true,
              against: true,
              class: 'status',
            });
            return true;
          },
        );
        assert.equal(text, CANONICAL.streamPrefix, 'content before the error was delivered');
        received('stream-error-event');
      },
      'abort-mid-stream': async () => {
        const closesBefore = fake.clientCloses;
        const ac = new AbortController();
        const stream = await provider.chatStream(
          canonicalRequest('abort-mid-stream'),
          ctxFor('abort-mid-stream', ac.signal),
        );
        const iter = stream[Symbol.asyncIterator]();
        let text = '';
        for (let i = 0; i < 10 && text !== CANONICAL.streamPrefix; i++) {
          const r = await iter.next();
          assert.equal(r.done, false, 'stream ended before the held-open point');
          text += r.value.choices[0]?.delta.content ?? '';
        }
        assert.equal(text, CANONICAL.streamPrefix);
        const pending = iter.next();
        ac.abort(new Error('client went away'));
        await assert.rejects(pending);
        await fake.waitForClientClose(closesBefore + 1, 5000);
        received('abort-mid-stream');
      },
      'context-headers': async () => {
        await provider.chat(canonicalRequest('context-headers'), ctxFor('context-headers'));
        const last = fake.requests[fake.requests.length - 1];
        assert.equal(
          last?.headers['x-correlation-id'],
          'corr-context-headers',
          'ctx.headers reach the upstream',
        );
        received('context-headers');
      },
      health: async () => {
        const h = await provider.health(AbortSignal.timeout(5000));
        assert.equal(h.ok, true, h.detail);
        assert.ok(h.latencyMs >= 0);
        received('health');
      },
      'error-invalid-request': () => errorCase('error-invalid-request'),
      'error-auth': () => errorCase('error-auth'),
      'error-permission': () => errorCase('error-permission'),
      'error-not-found': () => errorCase('error-not-found'),
      'error-too-large': () => errorCase('error-too-large'),
      'error-rate-limit': () => errorCase('error-rate-limit'),
      'error-server': () => errorCase('error-server'),
      'error-overloaded': () => errorCase('error-overloaded'),
      'error-connect-refused': async () => {
        const down = def.create(baseUrlOn(fake.baseUrl, await closedPort()));
        try {
          for (const call of [
            () => down.chat(canonicalRequest('text'), ctxFor('error-connect-refused')),
            () => down.chatStream(canonicalRequest('stream-text'), ctxFor('error-connect-refused')),
          ]) {
            await assert.rejects(call(), (e) => {
              const pe = expectPortico(e, 'upstream_unavailable');
              expectVerdict(pe, down, { retry: true, against: true, class: 'connect' });
              return true;
            });
          }
        } finally {
          await down.close();
        }
      },
      'error-timeout': async () => {
        // Accepts the request and never answers: the per-attempt timeout (ctx.timeoutMs) ends it.
        const silent: Server = createServer((req) => req.resume());
        await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
        const slow = def.create(baseUrlOn(fake.baseUrl, (silent.address() as AddressInfo).port));
        try {
          for (const call of [
            () => slow.chat(canonicalRequest('text'), { ...ctxFor('error-timeout'), timeoutMs: 100 }),
            () =>
              slow.chatStream(canonicalRequest('stream-text'), {
                ...ctxFor('error-timeout'),
                timeoutMs: 100,
              }),
          ]) {
            await assert.rejects(call(), (e) => {
              const pe = expectPortico(e, 'upstream_timeout');
              expectVerdict(pe, slow, { retry: true, against: true, class: 'timeout' });
              return true;
            });
          }
        } finally {
          await slow.close();
          silent.closeAllConnections();
          await new Promise((r) => silent.close(r));
        }
      },
    };

    async function errorCase(testCase: ConformanceCase): Promise<void> {
      const spec = ERROR_CASES.find((c) => c.testCase === testCase);
      assert.ok(spec);
      await assert.rejects(provider.chat(canonicalRequest(testCase), ctxFor(testCase)), (e) => {
        const pe = expectPortico(e, spec.code);
        assert.equal(pe.status, spec.status);
        assert.ok(pe.message.length > 0);
        if (spec.retryAfter !== undefined) {
          assert.equal(pe.headers['retry-after'], spec.retryAfter);
          // Dispatch waits this long before retrying (or returns the error when it is too long).
          assert.equal(pe.upstream?.retryAfterMs, Number(spec.retryAfter) * 1000);
        }
        expectVerdict(pe, provider, { retry: spec.retry, against: spec.against, class: 'status' });
        return true;
      });
      // The fixture's own 4xx/5xx is expected; only protocol validation failures count here.
      received(testCase);
    }

    for (const testCase of CONFORMANCE_CASES) {
      const reason = def.skip?.[testCase];
      if (reason !== undefined) it(testCase, { skip: reason }, () => {});
      else it(testCase, { timeout: 10_000 }, cases[testCase]);
    }
  });
}

function pickUsage(
  u: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined | null,
): unknown {
  if (!u) return u;
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.total_tokens,
  };
}

const defs = registeredProviderConformance();
if (defs.length === 0) {
  it('provider conformance', () => assert.fail('no adapter registered in test/conformance/providers/'));
}
for (const def of defs) defineSuite(def);
