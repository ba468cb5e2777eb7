/**
 * Streams and the per-backend bookkeeping of dispatch (docs/routing.md), for both stream paths:
 * an OpenAI-compatible backend (bytes passed through: dispatchRawStream) and an Anthropic backend
 * (chunks converted: dispatchStream).
 *
 * - A half-open probe that is a stream decides at its first chunk: the circuit closes then and the
 *   backend takes other requests while the stream goes on. It used to decide at the stream's end,
 *   and the half-open circuit refused every other request meanwhile (a long generation kept a
 *   recovered backend out of service for its whole length).
 * - A failure after the first chunk counts as one failure of its own (it used to reopen the circuit
 *   that the probe's verdict had not closed yet).
 * - A stream's latency sample (latency_ewma_ms, the `latency` balancer) is its time to first chunk,
 *   not its time to first chunk averaged with its whole length.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { OPENAI_ANSWER as OPENAI_OK, anthropicEvent as ev, openaiChunk } from '../support/upstream-bodies.js';

/** What the upstream does with the next requests. */
type Mode =
  | { kind: 'fail' }
  /** Streams: the first chunk at once, the rest when `release` is called. */
  | { kind: 'hold' }
  /** Streams: the first chunk at once, then the connection is cut. */
  | { kind: 'cut' }
  /** Streams: the first chunk at once, the rest after `ms`. */
  | { kind: 'slow'; ms: number };

const OPENAI_STREAM = { first: openaiChunk('tok '), rest: openaiChunk('', 'stop') + 'data: [DONE]\n\n' };

const ANTHROPIC_OK = JSON.stringify({
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'claude-x',
  content: [{ type: 'text', text: 'ok' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 1, output_tokens: 1 },
});
const ANTHROPIC_STREAM = {
  first:
    ev('message_start', {
      message: {
        id: 'msg_2',
        type: 'message',
        role: 'assistant',
        model: 'claude-x',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 1, output_tokens: 0 },
      },
    }) +
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'tok ' } }),
  rest:
    ev('content_block_stop', { index: 0 }) +
    ev('message_delta', {
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 1 },
    }) +
    ev('message_stop', {}),
};

describe('streams: the half-open probe decides at the first chunk; the latency sample is the TTFT', () => {
  let up: Server;
  let gw: TestGateway;
  let mode: Mode = { kind: 'fail' };
  /** Ends the streams held open (mode `hold`). */
  let releases: Array<() => void> = [];

  before(async () => {
    up = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const anthropic = req.url?.endsWith('/messages') === true;
        if (mode.kind === 'fail') {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(
            anthropic
              ? JSON.stringify({ type: 'error', error: { type: 'api_error', message: 'down' } })
              : '{"error":{"message":"down"}}',
          );
          return;
        }
        if (!(JSON.parse(body) as { stream?: boolean }).stream) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(anthropic ? ANTHROPIC_OK : OPENAI_OK);
          return;
        }
        const s = anthropic ? ANTHROPIC_STREAM : OPENAI_STREAM;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(s.first);
        const finish = (r: ServerResponse): void => {
          if (!r.destroyed) r.end(s.rest);
        };
        if (mode.kind === 'hold') releases.push(() => finish(res));
        else if (mode.kind === 'cut') setTimeout(() => res.destroy(), 50);
        else setTimeout(() => finish(res), mode.ms);
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(up.address() as AddressInfo).port}`;
    const common = {
      retry: { attempts: 1 },
      circuit: { failures: 2, open_ms: 200 },
      health_check: { enabled: false },
    };
    // One model (with its one backend) per test and stream path: each test starts from a closed circuit.
    const models: Record<string, unknown> = {};
    for (const test of ['probe', 'cut', 'ewma']) {
      models[`oa-${test}`] = {
        backends: [{ id: `oa-${test}-b`, provider: 'vllm', base_url: `${base}/v1`, model: 'm' }],
        ...common,
      };
      models[`an-${test}`] = {
        backends: [
          { id: `an-${test}-b`, provider: 'anthropic', base_url: base, api_key: 'k', model: 'claude-x' },
        ],
        ...common,
      };
    }
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', allowed_models: Object.keys(models), api_keys: [{ value: ACME_KEY }] }],
        models,
      }),
    );
  });
  after(async () => {
    await gw.close();
    up.closeAllConnections();
    await new Promise((r) => up.close(r));
  });

  const post = (model: string, stream: boolean): Promise<Response> =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
  const unary = async (model: string): Promise<number> => {
    const r = await post(model, false);
    await r.text();
    return r.status;
  };
  const backend = async (model: string) => {
    const r = await fetch(`${gw.url}/admin/backends`, {
      headers: { authorization: 'Bearer test-admin-token' },
    });
    const j = (await r.json()) as {
      data: Array<{
        model: string;
        backends: Array<{
          state: string;
          latency_ewma_ms: number | null;
          circuit: { consecutive_failures: number };
        }>;
      }>;
    };
    const b = j.data.find((m) => m.model === model)?.backends[0];
    assert.ok(b, `${model} listed`);
    return b;
  };
  /** Two failures open the circuit; after open_ms the next request is the half-open probe. */
  const openThenWait = async (model: string): Promise<void> => {
    mode = { kind: 'fail' };
    assert.equal(await unary(model), 502);
    assert.equal(await unary(model), 502);
    assert.equal((await backend(model)).state, 'open');
    await new Promise((r) => setTimeout(r, 250));
  };
  /** Reads a stream's body up to its first bytes; the rest is read by the returned promise. */
  const startStream = async (model: string) => {
    const r = await post(model, true);
    assert.equal(r.status, 200);
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    const first = await reader.read();
    assert.equal(first.done, false);
    let text = decoder.decode(first.value, { stream: true });
    const rest = (async () => {
      for (;;) {
        const n = await reader.read();
        if (n.done) return text;
        text += decoder.decode(n.value, { stream: true });
      }
    })();
    return { rest };
  };

  for (const [prefix, path] of [
    ['oa', 'pass-through'],
    ['an', 'converted'],
  ] as const) {
    it(`${path}: a recovered backend takes requests while its probe stream goes on`, async () => {
      const model = `${prefix}-probe`;
      await openThenWait(model);
      mode = { kind: 'hold' };
      releases = [];
      const probe = await startStream(model);
      try {
        // The probe's first chunk reached the client: the circuit is closed, not half-open.
        const b = await backend(model);
        assert.equal(b.state, 'healthy', JSON.stringify(b));
        assert.equal(b.circuit.consecutive_failures, 0);
        for (let i = 0; i < 3; i++) assert.equal(await unary(model), 200, 'served while the probe streams');
        assert.equal(releases.length, 1, 'the probe stream is still open');
      } finally {
        for (const r of releases) r();
      }
      assert.match(await probe.rest, /stop/);
      assert.equal((await backend(model)).state, 'healthy');
    });

    it(`${path}: a probe stream cut after its first chunk counts as one failure, not a failed probe`, async () => {
      const model = `${prefix}-cut`;
      await openThenWait(model);
      mode = { kind: 'cut' };
      const probe = await startStream(model);
      assert.match(await probe.rest, /error/, 'the client gets an error event');
      const b = await backend(model);
      // Closed at the first chunk; the cut is the first failure since (threshold 2).
      assert.equal(b.state, 'healthy', JSON.stringify(b));
      assert.equal(b.circuit.consecutive_failures, 1);
      mode = { kind: 'hold' };
      assert.equal(await unary(model), 200);
    });

    it(`${path}: latency_ewma_ms of a long stream is its time to first chunk`, async () => {
      const model = `${prefix}-ewma`;
      mode = { kind: 'slow', ms: 1500 };
      const started = performance.now();
      const s = await startStream(model);
      await s.rest;
      assert.ok(performance.now() - started >= 1400, 'the stream took 1.5 s');
      const { latency_ewma_ms } = await backend(model);
      assert.ok(latency_ewma_ms !== null);
      // Before: settle observed the whole stream too, 0.3 × 1500 ms on top of the TTFT.
      assert.ok(latency_ewma_ms < 200, `latency_ewma_ms ${latency_ewma_ms} is the TTFT's, not the stream's`);
    });
  }
});
