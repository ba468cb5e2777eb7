import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamPool } from './upstream-pool.js';
import { postForBytes, type BytesRequest } from './upstream-bytes.js';
import { Cancel, cancellableOf } from '../lib/abort.js';
import { Mapped, upstreamRequest } from '../../test/support/upstream-request.js';

let server: Server;
let up: UpstreamPool;
let received: string[] = [];
const open = new Set<ServerResponse>();

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push(`${req.method} ${req.url} ${req.headers['x-test'] ?? ''} ${body}`);
      if (req.url === '/chunks') {
        // Three chunks written apart: the handler must join them in order.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"a":');
        setTimeout(() => res.write('"é', 'utf8'), 5);
        setTimeout(() => res.end('x"}'), 10);
      } else if (req.url === '/error') {
        res.writeHead(429, { 'retry-after': '7', 'X-Upper': 'Kept' });
        res.end('{"error":{"message":"slow down"}}' + ' '.repeat(10_000));
      } else if (req.url === '/hang-head') {
        open.add(res); // never answers
      } else if (req.url === '/hang-body') {
        res.writeHead(200);
        res.write('{"partial":');
        open.add(res);
      } else {
        res.end('{}');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up = new UpstreamPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    connections: 4,
    keepAliveTimeoutMs: 1_000,
  });
});

after(async () => {
  await up.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const req = (path: string, over: Partial<BytesRequest> = {}): BytesRequest =>
  upstreamRequest(path, '{"q":1}', over);

describe('postForBytes', () => {
  it('sends method, path, headers and body, and joins the answer chunks in order', async () => {
    received = [];
    const r = await postForBytes(up.pool, req('/chunks'));
    assert.equal(r.statusCode, 200);
    assert.equal(r.body.toString('utf8'), '{"a":"éx"}');
    assert.deepEqual(r.headers, {}, 'success: headers are not parsed');
    assert.deepEqual(received, ['POST /chunks yes {"q":1}']);
  });

  it('an error status: headers parsed (lowercased), body capped at maxErrorBody', async () => {
    const r = await postForBytes(up.pool, req('/error', { maxErrorBody: 100 }));
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '7');
    assert.equal(r.headers['x-upper'], 'Kept');
    assert.equal(r.body.length, 100);
    assert.ok(r.body.toString('utf8').startsWith('{"error":{"message":"slow down"}}'));
  });

  it('already cancelled (a Cancel, or an AbortSignal seen through cancellableOf): rejected at once with the request phase', async () => {
    const c = new Cancel();
    c.abort(new Error('gone'));
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    for (const cancel of [c, cancellableOf(ac.signal)]) {
      const err = await postForBytes(up.pool, req('/ok', { cancel })).catch((e: unknown) => e);
      assert.ok(err instanceof Mapped);
      assert.equal(err.phase, 'request');
      assert.equal((err.original as Error).message, 'gone');
    }
  });

  it('abort while waiting for the head, and while reading the body: rejected with the right phase', async () => {
    const a1 = new Cancel();
    const p1 = postForBytes(up.pool, req('/hang-head', { cancel: a1 })).catch((e: unknown) => e);
    setTimeout(() => a1.abort(new Error('client left')), 50);
    const e1 = await p1;
    assert.ok(e1 instanceof Mapped);
    assert.equal(e1.phase, 'request');
    assert.equal((e1.original as Error).message, 'client left');

    const a2 = new AbortController();
    const p2 = postForBytes(up.pool, req('/hang-body', { cancel: cancellableOf(a2.signal) })).catch(
      (e: unknown) => e,
    );
    setTimeout(() => a2.abort(new Error('client left')), 50);
    const e2 = await p2;
    assert.ok(e2 instanceof Mapped);
    assert.equal(e2.phase, 'stream');
  });

  it('undici timeouts apply: no head in time, then a body that stops', async () => {
    const e1 = await postForBytes(up.pool, req('/hang-head', { headersTimeout: 100 })).catch(
      (e: unknown) => e,
    );
    assert.ok(e1 instanceof Mapped);
    assert.equal((e1.original as { code?: string }).code, 'UND_ERR_HEADERS_TIMEOUT');
    const e2 = await postForBytes(up.pool, req('/hang-body', { bodyTimeout: 100 })).catch((e: unknown) => e);
    assert.ok(e2 instanceof Mapped);
    assert.equal(e2.phase, 'stream');
    assert.equal((e2.original as { code?: string }).code, 'UND_ERR_BODY_TIMEOUT');
  });
});
