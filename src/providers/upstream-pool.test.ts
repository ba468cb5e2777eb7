import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSignedCert } from '../../test/support/tls.js';
import type { AddressInfo, Socket } from 'node:net';
import { UpstreamPool } from './upstream-pool.js';

let server: Server;
let origin: string;
let connections = 0;

before(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function until(done: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

describe('UpstreamPool', () => {
  it('closes a socket that never carried a request once it is older than the keep-alive timeout', async () => {
    const up = new UpstreamPool(origin, { connections: 4, keepAliveTimeoutMs: 200 });
    try {
      // A socket the pool's connector opened that no request ever used (what undici leaves behind
      // when it reconnects for an aborted request).
      const { port } = new URL(origin);
      const socket = await new Promise<Socket>((resolve, reject) =>
        up.connect({ hostname: '127.0.0.1', protocol: 'http:', port }, (err, s) =>
          err ? reject(err) : resolve(s as Socket),
        ),
      );
      assert.equal(up.sweep(), 0, 'younger than the keep-alive timeout: kept');
      assert.equal(socket.destroyed, false);
      await until(() => socket.destroyed);
      assert.equal(socket.destroyed, true, 'closed by the reaper');
      assert.equal(up.reaped, 1);
    } finally {
      await up.close();
    }
  });

  it('never closes a socket that carried a request: keep-alive reuse is untouched', async () => {
    const up = new UpstreamPool(origin, { connections: 1, keepAliveTimeoutMs: 60_000 });
    try {
      const before = connections;
      const r1 = await up.pool.request({ method: 'POST', path: '/', body: 'one' });
      assert.equal(await r1.body.text(), 'ok');
      // A sweep long after the keep-alive timeout would have passed: the used socket stays.
      assert.equal(up.sweep(performance.now() + 10 * 60_000), 0);
      assert.equal(up.openConnections, 1);
      const r2 = await up.pool.request({ method: 'POST', path: '/', body: 'two' });
      assert.equal(await r2.body.text(), 'ok');
      assert.equal(connections - before, 1, 'both requests on one connection');
      assert.equal(up.reaped, 0);
    } finally {
      await up.close();
    }
  });

  it('over TLS: an unused socket (handshake done, no request) is reaped, a used one is kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-upstream-tls-'));
    const { certFile, keyFile } = await selfSignedCert(dir);
    const cert = await readFile(certFile);
    const tls = createTlsServer({ cert, key: await readFile(keyFile) }, (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    const port = String((tls.address() as AddressInfo).port);
    const up = new UpstreamPool(`https://127.0.0.1:${port}`, {
      connections: 2,
      keepAliveTimeoutMs: 200,
      connect: { ca: cert },
    });
    try {
      const used = await up.pool.request({ method: 'POST', path: '/', body: 'x' });
      assert.equal(await used.body.text(), 'ok');
      const unused = await new Promise<Socket>((resolve, reject) =>
        up.connect({ hostname: '127.0.0.1', protocol: 'https:', port, servername: '' }, (err, s) =>
          err ? reject(err) : resolve(s as Socket),
        ),
      );
      await until(() => unused.destroyed);
      assert.equal(unused.destroyed, true, 'the handshake-only socket was reaped');
      assert.equal(up.reaped, 1);
      assert.equal(
        up.sweep(performance.now() + 60_000),
        0,
        "the socket that carried a request is not the reaper's",
      );
    } finally {
      await up.close();
      tls.closeAllConnections();
      await new Promise((r) => tls.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
