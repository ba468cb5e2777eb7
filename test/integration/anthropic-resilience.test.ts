/**
 * Anthropic backends under the dispatch wrappers (docs/routing.md): their failures reach the
 * circuit breaker (5xx, 529 overloaded, refused connections, per-attempt timeouts), are retried on
 * another backend (429, 502, 529, timeouts; streams before their first chunk), honour the
 * upstream's retry-after, and show up in /admin/backends (last_error) and
 * portico_upstream_errors_total. Before the fix no Anthropic error said which backend failed how
 * (`upstream`), so none of this happened: the circuit never opened and only a refused connection
 * was retried.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { anthropicEvent as sse } from '../support/upstream-bodies.js';

const MESSAGE = JSON.stringify({
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'claude-x',
  content: [{ type: 'text', text: 'hello' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 3, output_tokens: 1 },
});

const STREAM =
  sse('message_start', {
    message: {
      id: 'msg_2',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 3, output_tokens: 0 },
    },
  }) +
  sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
  sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'hello' } }) +
  sse('content_block_stop', { index: 0 }) +
  sse('message_delta', {
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: 1 },
  }) +
  sse('message_stop', {});

const ERROR_TYPES: Record<number, string> = {
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  529: 'overloaded_error',
};

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
}
const urlOf = (s: Server): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

/** A port nobody listens on (a server opened and closed). */
async function closedPort(): Promise<number> {
  const s = await listen(() => {});
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('Anthropic backends: retries, circuit breaker, retry-after, error accounting', () => {
  let bad: Server;
  let good: Server;
  let silent: Server;
  let gw: TestGateway;
  /** What the failing upstream answers, and the retry-after it sends (if any). */
  let badStatus = 500;
  let badRetryAfter: string | undefined;
  let badHits = 0;
  let goodHits = 0;

  before(async () => {
    bad = await listen((req, res) => {
      req.resume();
      req.on('end', () => {
        badHits++;
        res.writeHead(badStatus, {
          'content-type': 'application/json',
          ...(badRetryAfter !== undefined ? { 'retry-after': badRetryAfter } : {}),
        });
        res.end(
          JSON.stringify({
            type: 'error',
            error: { type: ERROR_TYPES[badStatus] ?? 'api_error', message: `boom ${badStatus}` },
          }),
        );
      });
    });
    good = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        goodHits++;
        if ((JSON.parse(body) as { stream?: boolean }).stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end(STREAM);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(MESSAGE);
      });
    });
    // Accepts requests and never answers: every attempt on it times out.
    silent = await listen((req) => req.resume());
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const anthropic = (id: string, base_url: string, extra: Record<string, unknown> = {}) => ({
      id,
      provider: 'anthropic',
      base_url,
      api_key: 'k',
      model: 'claude-x',
      ...extra,
    });
    const hc = { enabled: false };
    const one = { retry: { attempts: 1 }, circuit: { failures: 2, open_ms: 60_000 }, health_check: hc };
    // Two backends, round-robin from the failing one: a retryable failure is answered by the other.
    const two = {
      retry: { attempts: 3, backoff_ms: 1, max_retry_after_ms: 5000 },
      circuit: { failures: 1000 },
      health_check: hc,
    };
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          {
            id: 'acme-corp',
            allowed_models: ['failing', 'dead', 'slow', 'duo', 'duo-slow'],
            api_keys: [{ value: ACME_KEY }],
          },
        ],
        models: {
          failing: { backends: [anthropic('claude-failing', urlOf(bad))], ...one },
          dead: { backends: [anthropic('claude-dead', dead)], ...one },
          slow: { backends: [anthropic('claude-slow', urlOf(silent), { timeout_ms: 100 })], ...one },
          duo: { backends: [anthropic('claude-a', urlOf(bad)), anthropic('claude-b', urlOf(good))], ...two },
          'duo-slow': {
            backends: [
              anthropic('claude-silent', urlOf(silent), { timeout_ms: 100 }),
              anthropic('claude-c', urlOf(good)),
            ],
            ...two,
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    silent.closeAllConnections();
    for (const s of [bad, good, silent]) await new Promise((r) => s.close(r));
  });

  const chat = async (model: string, stream = false) => {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: r.status, text: await r.text() };
  };
  const backend = async (model: string, id: string) => {
    const r = await fetch(`${gw.url}/admin/backends`, {
      headers: { authorization: 'Bearer test-admin-token' },
    });
    const j = (await r.json()) as {
      data: Array<{
        model: string;
        backends: Array<{
          id: string;
          state: string;
          last_error: string | null;
          circuit: { consecutive_failures: number };
        }>;
      }>;
    };
    const b = j.data.find((m) => m.model === model)?.backends.find((x) => x.id === id);
    assert.ok(b, `${model}/${id} listed`);
    return b;
  };
  const upstreamErrors = async (id: string, cls: string): Promise<number> => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('portico_upstream_errors_total{') &&
          l.includes(`backend="${id}"`) &&
          l.includes(`class="${cls}"`),
      );
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('5xx answers open the circuit, set last_error and count in portico_upstream_errors_total', async () => {
    badStatus = 500;
    badRetryAfter = undefined;
    badHits = 0;
    assert.equal((await chat('failing')).status, 502);
    assert.equal((await chat('failing')).status, 502);
    const b = await backend('failing', 'claude-failing');
    assert.equal(b.state, 'open', JSON.stringify(b));
    assert.equal(b.circuit.consecutive_failures, 2);
    assert.match(b.last_error ?? '', /boom 500/);
    assert.equal(await upstreamErrors('claude-failing', 'status_5xx'), 2);
    // The open circuit keeps further requests off the backend.
    const r = await chat('failing');
    assert.equal(r.status, 503, r.text);
    assert.equal(badHits, 2, 'no request reached the backend while its circuit is open');
  });

  it('a refused connection opens the circuit', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await chat('dead')).status, 503);
    const b = await backend('dead', 'claude-dead');
    assert.equal(b.state, 'open', JSON.stringify(b));
    assert.equal(await upstreamErrors('claude-dead', 'connect'), 2);
  });

  it('per-attempt timeouts open the circuit', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await chat('slow')).status, 504);
    const b = await backend('slow', 'claude-slow');
    assert.equal(b.state, 'open', JSON.stringify(b));
    assert.equal(await upstreamErrors('claude-slow', 'timeout'), 2);
  });

  for (const status of [429, 502, 529]) {
    it(`an upstream ${status} is retried on the other backend (unary and stream)`, async () => {
      badStatus = status;
      badRetryAfter = status === 429 ? '0' : undefined;
      badHits = 0;
      goodHits = 0;
      for (let i = 0; i < 4; i++) {
        const r = await chat('duo', i % 2 === 1);
        assert.equal(r.status, 200, r.text);
      }
      assert.ok(badHits >= 1, 'the failing backend was tried');
      assert.equal(goodHits, 4);
    });
  }

  it('a timed-out attempt is retried on the other backend', async () => {
    goodHits = 0;
    for (let i = 0; i < 2; i++) assert.equal((await chat('duo-slow')).status, 200);
    assert.equal(goodHits, 2);
  });

  it("honours the upstream's retry-after: the backend that sent it cools down, the other answers at once", async () => {
    // The hint belongs to the backend that sent it (docs/routing.md, retry-after): the retry goes
    // at once to the other backend, and the limited one is passed over until its hint expires.
    // Anthropic's retry-after must be read for that (before, its errors carried no hint at all).
    badStatus = 429;
    badRetryAfter = '1';
    badHits = 0;
    goodHits = 0;
    const started = performance.now();
    for (let i = 0; i < 4; i++) {
      const r = await chat('duo', i % 2 === 1);
      assert.equal(r.status, 200, r.text);
    }
    assert.ok(performance.now() - started < 900, 'no request waited for the hint');
    assert.equal(badHits, 1, 'the limited backend was passed over while it cooled down');
    assert.equal(goodHits, 4);
    // Once the hint has expired, the backend takes its share again.
    await new Promise((r) => setTimeout(r, 1100));
    badRetryAfter = undefined;
    badStatus = 502;
    for (let i = 0; i < 2; i++) assert.equal((await chat('duo')).status, 200);
    assert.ok(badHits >= 2, `the backend was tried again after its hint (${badHits})`);
  });
});
