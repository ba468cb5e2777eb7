import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
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
});
