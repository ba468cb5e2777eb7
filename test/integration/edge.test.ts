/**
 * The edge below the routes: a slow sender is cut at its header or body deadline with an
 * OpenAI-shaped 408, connections over the per-replica and per-IP caps get a 503
 * too_many_connections and are closed without their request running, malformed HTTP gets a 400,
 * and a NUL byte in a path or query never reaches a handler.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { Gateway } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { buildHttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { pino } from 'pino';

interface RawResult {
  /** Everything the server sent before it closed the connection. */
  text: string;
  /** ms from connect to close. */
  closedAfterMs: number;
}

/** Open a TCP connection, run `drive` (writes), collect what comes back until the server closes. */
function rawConnection(url: string, drive: (s: Socket) => void, giveUpMs = 10_000): Promise<RawResult> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const s = connect(Number(port), hostname);
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connection still open after ${giveUpMs} ms; received: ${text.slice(0, 200)}`));
    }, giveUpMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedAfterMs: performance.now() - started });
    });
    s.on('connect', () => drive(s));
  });
}

function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}

function errorOf(raw: string): { code: string; message: string; type: string } {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  return (JSON.parse(body) as { error: { code: string; message: string; type: string } }).error;
}

/** GET /metrics on a connection of its own, closed after (a kept-alive one would count against the caps). */
function scrape(gw: TestGateway): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`${gw.url}/metrics`, { agent: false }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (t += d));
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
}

async function metricValue(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await scrape(gw);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('edge: deadlines for slow senders', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(
      demoConfig({ server: { host: '127.0.0.1', port: 0, headers_timeout_ms: 600, body_timeout_ms: 1200 } }),
    );
  });
  after(() => gw.close());

  it('a client that sends its headers a byte at a time is cut at the headers deadline with a 408', async () => {
    const head = 'GET /health HTTP/1.1\r\nHost: x\r\n';
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const r = await rawConnection(gw.url, (s) => {
      timer = setInterval(() => {
        if (!s.destroyed && i < head.length) s.write(head[i++] ?? '');
      }, 100);
    });
    clearInterval(timer);
    assert.equal(statusOf(r.text), 408);
    const e = errorOf(r.text);
    assert.equal(e.code, 'request_timeout');
    assert.match(e.message, /headers did not arrive within 600 ms/);
    // Deadline + Node's check interval (1 s), never the old "open for minutes".
    assert.ok(r.closedAfterMs < 600 + 4000, `closed after ${r.closedAfterMs} ms`);
    assert.ok(r.closedAfterMs >= 550, `closed too early: ${r.closedAfterMs} ms`);
  });

  it('a connection that never sends a byte is closed by the headers deadline', async () => {
    const r = await rawConnection(gw.url, () => undefined);
    assert.equal(statusOf(r.text), 408);
  });

  it('a body trickling in is cut at the body deadline with a 408, and the handler never runs', async () => {
    const body = JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'slow' }] });
    let timer: NodeJS.Timeout | undefined;
    const before = await metricValue(
      gw,
      'portico_requests_total',
      'tenant="acme-corp",model="default",route="chat",status="200"',
    );
    const r = await rawConnection(gw.url, (s) => {
      s.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ACME_KEY}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      let i = 0;
      timer = setInterval(() => {
        if (!s.destroyed && i < body.length - 1) s.write(body[i++] ?? '');
      }, 200);
    });
    clearInterval(timer);
    assert.equal(statusOf(r.text), 408);
    const e = errorOf(r.text);
    assert.equal(e.code, 'request_timeout');
    assert.match(e.message, /body did not arrive within 1200 ms/);
    assert.ok(r.closedAfterMs < 1200 + 4000, `closed after ${r.closedAfterMs} ms`);
    assert.equal(await metricValue(gw, 'portico_connections_refused_total', 'reason="body_timeout"'), 1);
    const afterCount = await metricValue(
      gw,
      'portico_requests_total',
      'tenant="acme-corp",model="default",route="chat",status="200"',
    );
    assert.equal(afterCount, before);
  });

  it('a long stream is not cut by the body deadline (it only covers receiving the request)', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'default',
        stream: true,
        max_tokens: 30,
        messages: [{ role: 'user', content: 'a long answer please' }],
      }),
    });
    assert.equal(res.status, 200);
    // Read slowly past the body deadline: the stream must stay open.
    const reader = res.body!.getReader();
    await new Promise((r) => setTimeout(r, 1600));
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.match(text, /data: \[DONE\]/);
  });

  it('malformed HTTP gets an OpenAI-shaped 400 and the connection is closed', async () => {
    const r = await rawConnection(gw.url, (s) => s.write('GARBAGE / HTTP/1.1\r\n\r\n'));
    assert.equal(statusOf(r.text), 400);
    assert.equal(errorOf(r.text).code, 'invalid_request');
  });
});

describe('edge: connection caps', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(
      demoConfig({ server: { host: '127.0.0.1', port: 0, max_connections: 6, max_connections_per_ip: 3 } }),
    );
  });
  after(() => gw.close());

  it('the connection over the per-IP cap gets a 503 too_many_connections, its request does not run, the others are served', async () => {
    const { port } = new URL(gw.url);
    // Read the counters before the cap is reached (a /metrics fetch needs a connection too).
    const before = await metricValue(
      gw,
      'portico_requests_total',
      'tenant="acme-corp",model="default",route="chat",status="200"',
    );
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = connect(Number(port), '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      held.push(s);
    }
    try {
      const body = JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'x' }] });
      const r = await rawConnection(gw.url, (s) =>
        s.write(
          `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ACME_KEY}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        ),
      );
      assert.equal(statusOf(r.text), 503);
      const e = errorOf(r.text);
      assert.equal(e.code, 'too_many_connections');
      assert.match(e.message, /max_connections_per_ip/);
      assert.match(r.text, /retry-after: 1/);
      // One of the held connections still works.
      const ok = await new Promise<string>((resolve) => {
        const s = held[0]!;
        let t = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          t += d;
          if (t.includes('\r\n\r\n') && t.includes('"status"')) resolve(t);
        });
        s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      assert.equal(statusOf(ok), 200);
      // The refused request never ran (read once the held sockets are closed).
      for (const s of held) s.destroy();
      await new Promise((r) => setTimeout(r, 50));
      const afterCount = await metricValue(
        gw,
        'portico_requests_total',
        'tenant="acme-corp",model="default",route="chat",status="200"',
      );
      assert.equal(afterCount, before);
      assert.equal(
        await metricValue(gw, 'portico_connections_refused_total', 'reason="max_connections_per_ip"'),
        1,
      );
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it('when all connections are closed, new ones are accepted again', async () => {
    const res = await fetch(`${gw.url}/health`);
    assert.equal(res.status, 200);
  });

  it('over max_connections (per-IP cap off) the next connection gets a 503 naming server.max_connections', async () => {
    const gw2 = await startTestGateway(
      demoConfig({ server: { host: '127.0.0.1', port: 0, max_connections: 2, max_connections_per_ip: 0 } }),
    );
    const { port } = new URL(gw2.url);
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = connect(Number(port), '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        held.push(s);
      }
      const r = await rawConnection(gw2.url, (s) => s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
      assert.equal(statusOf(r.text), 503);
      assert.match(errorOf(r.text).message, /server\.max_connections\)/);
    } finally {
      for (const s of held) s.destroy();
      await gw2.close();
    }
  });
});

describe('edge: NUL bytes in paths and queries', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  for (const path of [
    '/admin/tenants/acme%00corp',
    '/admin/usage?tenant=a%00b',
    '/v1/models?x=%00',
    '/admin/keys/key%00x/revoke',
  ]) {
    it(`${path} -> 400 invalid_request`, async () => {
      const res = await fetch(`${gw.url}${path}`, {
        method: path.endsWith('revoke') ? 'POST' : 'GET',
        headers: { authorization: 'Bearer test-admin-token' },
      });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'invalid_request');
      assert.match(body.error.message, /NUL/);
    });
  }
});

describe('/ready for probes and for operators', () => {
  it('a gateway still starting: 503 {ready:false, reason:"starting"}, no backend details without the admin token', async () => {
    const loaded = await buildConfig(demoConfig(), { env: {} });
    const gateway = await Gateway.create(loaded, { defaultMetrics: false, logger: createLogger('silent') });
    const app = await buildHttpServer(gateway);
    try {
      const res = await app.inject({ method: 'GET', url: '/ready' });
      assert.equal(res.statusCode, 503);
      assert.deepEqual(res.json(), { ready: false, reason: 'starting' });
      const admin = await app.inject({
        method: 'GET',
        url: '/ready',
        headers: { authorization: 'Bearer test-admin-token' },
      });
      const body = admin.json<{ reason: string; reasons: string[]; models: Record<string, unknown> }>();
      assert.equal(body.reason, 'starting');
      assert.deepEqual(body.reasons, ['starting']);
      assert.ok(body.models['default']);
    } finally {
      await app.close();
      await gateway.close();
    }
  });
});

describe('warn-level log lines', () => {
  it('a failed request logs one "msg" and the error detail under its own key', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn', base: { service: 'portico' } },
      { write: (l: string) => void lines.push(l) },
    );
    const loaded = await buildConfig(
      demoConfig({
        models: {
          default: {
            retry: { attempts: 1 },
            backends: [
              { id: 'sim-down', provider: 'sim', sim: { faults: { error_rate: 1, error_status: 503 } } },
            ],
          },
        },
      }),
      { env: {} },
    );
    const gateway = await Gateway.create(loaded, { defaultMetrics: false, logger });
    const app = await buildHttpServer(gateway);
    gateway.markReady();
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        payload: { model: 'default', messages: [{ role: 'user', content: 'x' }] },
      });
      assert.equal(res.statusCode, 503);
      const failed = lines.filter((l) => l.includes('request failed'));
      assert.equal(failed.length, 1, lines.join('\n'));
      const line = failed[0] ?? '';
      assert.equal(line.match(/"msg":/g)?.length, 1, line);
      const obj = JSON.parse(line) as { msg: string; detail: string; code: string };
      assert.equal(obj.msg, 'request failed');
      assert.equal(obj.code, 'upstream_unavailable');
      assert.ok(obj.detail.length > 0);
    } finally {
      await app.close();
      await gateway.close();
    }
  });
});
