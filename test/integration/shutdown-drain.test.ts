/**
 * Graceful drain with keep-alive clients (every SDK keeps its connections alive). A connection
 * busy when stop() begins must be closed as soon as its response or stream ends: Fastify's
 * forceCloseConnections 'idle' closes only the connections idle at that moment, and one that went
 * idle later used to sit until drain_timeout_ms, so stop() (and SIGTERM) always took the whole
 * deadline. A request that arrives on such a connection during the drain gets the catalog's 503
 * `draining` (OpenAI shape, retry-after, x-request-id, connection: close), not Fastify's own body;
 * the probes keep answering as documented (/ready: not ready, `draining`; /health: ok).
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { ACME_KEY, demoConfig, startGatewayFromFile } from '../support/gateway.js';

/** Long enough that waiting for it cannot pass for a prompt drain. */
const DRAIN_MS = 8_000;
/** How long stop() may take after the last response ends (measured: a few ms; see docs/routing.md). */
const AFTER_LAST_MS = 1_500;

type Running = Awaited<ReturnType<typeof startGatewayFromFile>>;

/** A sim answering 25 tokens 20 ms apart: a stream (or a whole answer) takes about half a second. */
function start(): Promise<Running> {
  return startGatewayFromFile(
    demoConfig({
      models: {
        default: { backends: [{ id: 'sim', provider: 'sim', sim: { itl_ms: 20, output_tokens: 25 } }] },
      },
      server: { host: '127.0.0.1', port: 0, drain_timeout_ms: DRAIN_MS },
    }),
  );
}

const chatBody = (stream: boolean): string =>
  JSON.stringify({
    model: 'default',
    stream,
    max_tokens: 25,
    messages: [{ role: 'user', content: 'drain' }],
  });

/** One raw HTTP/1.1 request (keep-alive), written as is on a socket. */
function rawRequest(host: string, method: string, path: string, body?: string): string {
  const head = [
    `${method} ${path} HTTP/1.1`,
    `host: ${host}`,
    'connection: keep-alive',
    `authorization: Bearer ${ACME_KEY}`,
  ];
  if (body === undefined) return `${head.join('\r\n')}\r\n\r\n`;
  head.push('content-type: application/json', `content-length: ${Buffer.byteLength(body)}`);
  return `${head.join('\r\n')}\r\n\r\n${body}`;
}

/** A raw keep-alive connection: what it received, and when the server closed it. */
class RawConnection {
  readonly socket: Socket;
  text = '';
  readonly closed: Promise<number>;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => (this.text += d));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve(performance.now())));
    this.socket.on('error', () => {});
  }
  async waitFor(s: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!this.text.includes(s)) {
      if (Date.now() > deadline)
        throw new Error(`never received ${JSON.stringify(s)}; got ${this.text.slice(0, 300)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  /** The second response on the connection (the one after the stream): status, headers, body. */
  second(): { status: number; headers: Record<string, string>; body: string } {
    const at = this.text.indexOf('HTTP/1.1 ', 1);
    assert.ok(at > 0, `a second response on the connection; got ${this.text.slice(-300)}`);
    const rest = this.text.slice(at);
    const end = rest.indexOf('\r\n\r\n');
    const lines = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? '0');
    return { status: Number(lines[0]?.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) };
  }
}

describe('drain with keep-alive connections', () => {
  let g: Running | undefined;
  const agents: Agent[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const a of agents.splice(0)) await a.close().catch(() => {});
    await g?.cleanup().catch(() => {});
    g = undefined;
  });

  it('a stream and an answer in flight at stop() complete, and stop() returns right after, not at the deadline', async (t) => {
    g = await start();
    const url = g.url;
    const chat = (stream: boolean) => {
      // One keep-alive connection each, as an SDK client holds them.
      const agent = new Agent({ keepAliveTimeout: 60_000, connections: 1 });
      agents.push(agent);
      return request(`${url}/v1/chat/completions`, {
        dispatcher: agent,
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: chatBody(stream),
      });
    };
    const answering = chat(false);
    const streaming = await chat(true);
    assert.equal(streaming.statusCode, 200);
    // Both requests are in the pipeline (authenticated, waiting on the sim) before the drain begins.
    const open = g.gateway.deps.openRequests;
    for (let i = 0; i < 200 && (open?.size ?? 0) < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(open?.size, 2);

    const t0 = performance.now();
    const stopped = g.stop().then(() => performance.now());
    const streamText = streaming.body.text().then((text) => ({ text, at: performance.now() }));
    const answer = await answering;
    const answerBody = (await answer.body.json()) as { choices: Array<{ message: { content: string } }> };
    const answerAt = performance.now();
    const stream = await streamText;
    const stopAt = await stopped;

    assert.ok(stream.text.trimEnd().endsWith('data: [DONE]'), 'the stream in flight completes');
    assert.equal(answer.statusCode, 200);
    assert.ok((answerBody.choices[0]?.message.content.length ?? 0) > 0, 'the answer in flight completes');
    const lastEnd = Math.max(stream.at, answerAt);
    const after = Math.round(stopAt - lastEnd);
    t.diagnostic(`stop() returned ${after} ms after the last response ended`);
    // Before: stop() returned at the drain deadline (8 s after t0), whatever was in flight.
    assert.ok(
      after < AFTER_LAST_MS,
      `stop() returned ${after} ms after the last response ended (${Math.round(stopAt - t0)} ms after it began; drain_timeout_ms ${DRAIN_MS})`,
    );
    // Its headers went out during the drain: the client is told not to reuse the connection.
    assert.equal(answer.headers['connection'], 'close');
  });

  it('a request on a busy connection during the drain gets the catalog 503; /ready says draining, /health ok', async () => {
    g = await start();
    const { port, host } = new URL(g.url);
    const conns = [0, 1, 2].map(() => new RawConnection(Number(port)));
    sockets.push(...conns.map((c) => c.socket));
    for (const c of conns) c.socket.write(rawRequest(host, 'POST', '/v1/chat/completions', chatBody(true)));
    for (const c of conns) await c.waitFor('data: ');

    const stopped = g.stop().then(() => performance.now());
    // Pipelined behind each stream, sent once the drain has begun.
    await new Promise((r) => setImmediate(r));
    assert.equal(g.gateway.draining, true);
    const [chat, ready, health] = conns as [RawConnection, RawConnection, RawConnection];
    chat.socket.write(rawRequest(host, 'POST', '/v1/chat/completions', chatBody(false)));
    ready.socket.write(rawRequest(host, 'GET', '/ready'));
    health.socket.write(rawRequest(host, 'GET', '/health'));
    const closedAt = await Promise.all(conns.map((c) => c.closed));
    const stopAt = await stopped;

    for (const c of conns) assert.ok(c.text.includes('data: [DONE]'), 'each stream completes first');
    const refused = chat.second();
    assert.equal(refused.status, 503, refused.body);
    // Before: Fastify's {"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}.
    const body = JSON.parse(refused.body) as {
      error: { code: string; type: string; message: string; param: null };
    };
    assert.equal(body.error.code, 'draining');
    assert.equal(body.error.type, 'api_error');
    assert.equal(body.error.param, null);
    assert.match(body.error.message, /shutting down/);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.headers['connection'], 'close');
    assert.match(refused.headers['x-request-id'] ?? '', /.+/);
    assert.match(refused.headers['content-type'] ?? '', /^application\/json/);

    const r = ready.second();
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), { ready: false, reason: 'draining' });
    assert.equal(r.headers['connection'], 'close');
    const h = health.second();
    assert.equal(h.status, 200);
    assert.equal((JSON.parse(h.body) as { status: string }).status, 'ok');
    assert.equal(h.headers['connection'], 'close');

    const after = Math.round(stopAt - Math.max(...closedAt));
    assert.ok(after < AFTER_LAST_MS, `stop() returned ${after} ms after the last connection closed`);
  });
});
