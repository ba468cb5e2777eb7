import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamPool } from './upstream-pool.js';
import type { BytesRequest } from './upstream-bytes.js';
import { postForStream, type UpstreamBody, type UpstreamHead } from './upstream-stream.js';
import { Cancel } from '../lib/abort.js';
import { Mapped, upstreamRequest } from '../../test/support/upstream-request.js';

let server: Server;
let up: UpstreamPool;
const open = new Set<ServerResponse>();
/** Server-side: responses whose socket closed before they finished. */
const cut: string[] = [];
const finished: string[] = [];
const ports: number[] = [];
const BIG_CHUNKS = 2000; // 8 MB: more than loopback socket buffers hold
const BIG_CHUNK = 'x'.repeat(4096);

before(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      ports.push(req.socket.remotePort ?? 0);
      res.on('close', () => (res.writableFinished ? finished : cut).push(req.url ?? ''));
      if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'X-Upper': 'Kept' });
        res.write('data: 1\n\n');
        setTimeout(() => res.write('data: 2\n\n'), 5);
        setTimeout(() => res.end('data: [DONE]\n\n'), 10);
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const more = (): void => {
          while (i < BIG_CHUNKS) if (!res.write(`${String(i++).padStart(6, '0')}${BIG_CHUNK}`)) break;
          if (i < BIG_CHUNKS) res.once('drain', more);
          else res.end();
        };
        more();
      } else if (req.url === '/error') {
        res.writeHead(503, { 'retry-after': '3' });
        res.end('{"error":{"message":"busy"}}' + ' '.repeat(10_000));
      } else if (req.url === '/hints-then-error') {
        res.writeEarlyHints({ link: '</a.css>; rel=preload' });
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"after hints"}}');
      } else if (req.url === '/hints-then-sse') {
        res.writeEarlyHints({ link: '</a.css>; rel=preload' });
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end('data: [DONE]\n\n');
      } else if (req.url === '/endless-error') {
        res.writeHead(502, { 'content-type': 'text/plain' });
        const more = (): void => {
          if (res.destroyed) return;
          res.write('x'.repeat(1024));
          setTimeout(more, 5);
        };
        more();
      } else if (req.url === '/hang-head') {
        open.add(res);
      } else if (req.url === '/hang-body') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: 1\n\n');
        open.add(res);
      } else res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up = new UpstreamPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    connections: 4,
    keepAliveTimeoutMs: 5_000,
  });
});

after(async () => {
  await up.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const req = (path: string, over: Partial<BytesRequest> = {}): BytesRequest =>
  upstreamRequest(path, '{"stream":true}', over);

function bodyOf(head: UpstreamHead): UpstreamBody {
  assert.ok('body' in head, `status ${head.statusCode}`);
  return head.body;
}

/** Read a body to its end (or error) from now on. */
function readAll(body: UpstreamBody): Promise<{ text: string; error?: unknown }> {
  return new Promise((resolve) => {
    let text = '';
    body.setSink({
      data: (c) => (text += c.toString('latin1')),
      end: () => resolve({ text }),
      error: (error) => resolve({ text, error }),
    });
    body.resume();
  });
}

const waitFor = async (what: () => boolean, ms = 2_000): Promise<void> => {
  const until = Date.now() + ms;
  while (!what() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.ok(what(), 'condition not met in time');
};

describe('postForStream', () => {
  it('resolves at the head (headers lowercased) and delivers the chunks in order, then the end', async () => {
    const head = await postForStream(up.pool, req('/sse'));
    assert.equal(head.statusCode, 200);
    const body = bodyOf(head);
    assert.equal(body.headers['x-upper'], 'Kept');
    const r = await readAll(body);
    assert.equal(r.text, 'data: 1\n\ndata: 2\n\ndata: [DONE]\n\n');
    assert.equal(r.error, undefined);
    assert.equal(body.complete, true);
  });

  it('an error status resolves with its body, capped at maxErrorBody, and its headers', async () => {
    const head = await postForStream(up.pool, req('/error', { maxErrorBody: 50 }));
    assert.equal(head.statusCode, 503);
    assert.ok('errorBody' in head);
    assert.equal(head.errorBody.length, 50);
    assert.ok(head.errorBody.toString().startsWith('{"error":{"message":"busy"}}'));
    assert.equal(head.headers['retry-after'], '3');
  });

  it('1xx answers (103 Early Hints) are skipped: the real head follows, error status or stream', async () => {
    const e = await postForStream(up.pool, req('/hints-then-error'));
    assert.equal(e.statusCode, 500);
    assert.ok('errorBody' in e);
    assert.equal(e.errorBody.toString(), '{"error":{"message":"after hints"}}');
    const ok = await postForStream(up.pool, req('/hints-then-sse'));
    assert.equal(ok.statusCode, 200);
    assert.equal((await readAll(bodyOf(ok))).text, 'data: [DONE]\n\n');
  });

  it('an error body that never ends settles at the cap, and the request is closed', async () => {
    cut.length = 0;
    const started = Date.now();
    const e = await postForStream(up.pool, req('/endless-error', { maxErrorBody: 4096 }));
    assert.equal(e.statusCode, 502);
    assert.ok('errorBody' in e);
    assert.equal(e.errorBody.length, 4096);
    assert.ok(Date.now() - started < 2_000, 'settled at the cap, not at a timeout');
    await waitFor(() => cut.includes('/endless-error'));
  });

  it('an abort reaches a paused reader at once (a client that stopped reading still ends)', async () => {
    const cancel = new Cancel();
    const body = bodyOf(await postForStream(up.pool, req('/big', { cancel })));
    let error: unknown;
    let chunks = 0;
    body.setSink({
      data: () => {
        chunks++;
        body.pause();
      },
      end: () => assert.fail('no end after an abort'),
      error: (e) => (error = e),
    });
    body.resume();
    await waitFor(() => chunks === 1);
    cancel.abort(new Error('deadline'));
    await waitFor(() => error !== undefined);
    assert.equal((error as Error).message, 'deadline');
    assert.equal(chunks, 1);
  });

  it('a consumer that throws gets its error once and the upstream is closed (no hang, nothing swallowed)', async () => {
    cut.length = 0;
    const body = bodyOf(await postForStream(up.pool, req('/hang-body')));
    const errors: unknown[] = [];
    body.setSink({
      data: () => {
        throw new Error('consumer bug');
      },
      end: () => assert.fail('no end'),
      error: (e) => errors.push(e),
    });
    body.resume();
    await waitFor(() => errors.length === 1 && cut.includes('/hang-body'));
    assert.equal((errors[0] as Error).message, 'consumer bug');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(errors.length, 1);
  });

  it('backpressure: nothing is delivered while paused, the socket is not read; resume delivers every byte in order', async () => {
    finished.length = 0;
    const body = bodyOf(await postForStream(up.pool, req('/big')));
    const chunks: Buffer[] = [];
    let ended = false;
    body.setSink({
      data: (c) => {
        chunks.push(c);
        if (chunks.length === 1) body.pause();
      },
      end: () => (ended = true),
      error: (e) => assert.fail(String(e)),
    });
    body.resume();
    await waitFor(() => chunks.length === 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(chunks.length, 1, 'no chunk delivered while paused');
    assert.equal(ended, false);
    // undici stopped reading the socket: the upstream could not write its whole answer.
    assert.equal(finished.includes('/big'), false, 'the upstream finished while the reader was paused');
    body.resume();
    await waitFor(() => ended);
    const text = Buffer.concat(chunks).toString('latin1');
    assert.equal(text.length, BIG_CHUNKS * (6 + BIG_CHUNK.length));
    for (const i of [0, 1, 199, BIG_CHUNKS - 1])
      assert.equal(
        text.slice(i * (6 + BIG_CHUNK.length), i * (6 + BIG_CHUNK.length) + 6),
        String(i).padStart(6, '0'),
      );
  });

  it('drain: the rest is read and dropped, and the connection is reused', async () => {
    ports.length = 0;
    const body = bodyOf(await postForStream(up.pool, req('/big')));
    const seen: Buffer[] = [];
    body.setSink({ data: (c) => seen.push(c), end: () => undefined, error: () => undefined });
    body.pause();
    body.drain();
    await waitFor(() => body.complete);
    assert.equal(seen.length, 0, 'nothing reaches the old sink after drain');
    const again = await readAll(bodyOf(await postForStream(up.pool, req('/sse'))));
    assert.equal(again.text, 'data: 1\n\ndata: 2\n\ndata: [DONE]\n\n');
    assert.equal(ports.length, 2);
    assert.equal(ports[0], ports[1], 'the second request went over the same connection');
  });

  it('destroy aborts the request: the upstream sees its connection close', async () => {
    cut.length = 0;
    const body = bodyOf(await postForStream(up.pool, req('/hang-body')));
    const first = await new Promise<string>((resolve) => {
      body.setSink({ data: (c) => resolve(c.toString()), end: () => undefined, error: () => undefined });
      body.resume();
    });
    assert.equal(first, 'data: 1\n\n');
    body.destroy();
    await waitFor(() => cut.includes('/hang-body'));
  });

  it('cancelled while reading: the sink gets the reason; before the head: rejected, request phase', async () => {
    const c1 = new Cancel();
    const body = bodyOf(await postForStream(up.pool, req('/hang-body', { cancel: c1 })));
    const p = readAll(body);
    setTimeout(() => c1.abort(new Error('client left')), 50);
    const r = await p;
    assert.equal(r.text, 'data: 1\n\n');
    assert.equal((r.error as Error).message, 'client left');

    const c2 = new Cancel();
    const p2 = postForStream(up.pool, req('/hang-head', { cancel: c2 })).catch((e: unknown) => e);
    setTimeout(() => c2.abort(new Error('client left')), 50);
    const e2 = await p2;
    assert.ok(e2 instanceof Mapped);
    assert.equal(e2.phase, 'request');
  });

  it("undici's timeouts apply: no head in time (rejected), a body that stops (the sink's error)", async () => {
    const e1 = await postForStream(up.pool, req('/hang-head', { headersTimeout: 100 })).catch(
      (e: unknown) => e,
    );
    assert.ok(e1 instanceof Mapped);
    assert.equal((e1.original as { code?: string }).code, 'UND_ERR_HEADERS_TIMEOUT');
    const r = await readAll(bodyOf(await postForStream(up.pool, req('/hang-body', { bodyTimeout: 100 }))));
    assert.equal(r.text, 'data: 1\n\n');
    assert.equal((r.error as { code?: string }).code, 'UND_ERR_BODY_TIMEOUT');
  });
});
