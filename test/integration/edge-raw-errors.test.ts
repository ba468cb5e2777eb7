/**
 * Errors answered below Fastify (edge.ts: oversize headers, malformed HTTP, missed deadlines,
 * connection caps) are written as raw HTTP: they carry what every answer carries — an
 * x-request-id (review, 2026-12-08: they had none) and the security headers (they had only
 * nosniff).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

/** Send raw bytes, read the answer's head (lower-cased) until the server closes. */
function rawHead(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let t = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (t += d));
    s.on('close', () => resolve(t.slice(0, t.indexOf('\r\n\r\n')).toLowerCase()));
    s.on('error', () => undefined);
    s.on('connect', () => s.write(bytes));
  });
}

describe('raw edge errors carry x-request-id and the security headers', () => {
  let gw: TestGateway;
  let port: number;
  before(async () => {
    gw = await startTestGateway(demoConfig());
    port = Number(new URL(gw.url).port);
  });
  after(async () => {
    await gw.close();
  });

  const cases: Array<[string, string, RegExp]> = [
    [
      'oversize headers (431)',
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      /^http\/1\.1 431/,
    ],
    [
      'an oversize URL (431)',
      `GET /health?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      /^http\/1\.1 431/,
    ],
    ['malformed HTTP (400)', 'NOT HTTP AT ALL\r\n\r\n', /^http\/1\.1 400/],
  ];
  for (const [what, bytes, status] of cases) {
    it(what, async () => {
      const head = await rawHead(port, bytes);
      assert.match(head, status, head);
      const id = /\r\nx-request-id: (req_[0-9a-z]+)\r\n/.exec(head)?.[1];
      assert.ok(id, `x-request-id in ${head}`);
      assert.match(head, new RegExp(`\r\nx-correlation-id: ${id}\r\n`));
      assert.match(head, /\r\nx-content-type-options: nosniff\r\n/);
      assert.match(head, /\r\nx-frame-options: deny\r\n/);
      assert.match(head, /\r\nreferrer-policy: no-referrer\r\n/);
      assert.match(head, /\r\nconnection: close(\r\n|$)/);
    });
  }
});
