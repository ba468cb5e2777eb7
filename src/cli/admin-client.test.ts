import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdminApiError, adminRequest, type AdminTarget } from './admin-client.js';

const BAD_GATEWAY_PAGE = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx/1.25.3</center>
</body>
</html>
`;

/**
 * A proxy in front of the gateway answers with its own HTML pages. Before, the CLI printed
 * `portico: Unexpected token '<', "<html>..." is not valid JSON`: no status, no URL (review,
 * 2026-12-14).
 */
describe('adminRequest: answers that are not the admin API JSON', () => {
  let server: Server;
  let target: AdminTarget;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/admin/tenants') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end(BAD_GATEWAY_PAGE);
      } else if (req.url === '/admin/keys') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><title>Sign in</title><form>…</form>');
      } else if (req.url === '/admin/empty') {
        res.writeHead(503);
        res.end();
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'No such thing.', type: 'invalid_request_error' } }));
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    target = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 't' };
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const failure = async (path: string): Promise<AdminApiError> => {
    const e = await adminRequest(target, 'GET', path).then(
      () => assert.fail('should fail'),
      (err: unknown) => err,
    );
    assert.ok(e instanceof AdminApiError, String(e));
    return e;
  };

  it('an HTML 502 names the status, the URL and the start of the body', async () => {
    const e = await failure('/admin/tenants');
    assert.equal(e.status, 502);
    assert.equal(
      e.message,
      `GET ${target.url}/admin/tenants: HTTP 502 Bad Gateway, not the admin API's JSON (content-type text/html): ` +
        '"<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> <hr><center>nginx/1.25.3</center> </body> </html>". ' +
        'Is something in front of the gateway (a proxy, a load balancer) failing, or does --url point elsewhere?',
    );
  });

  it('a 200 that is not JSON is an error too, not a JSON parse error', async () => {
    const e = await failure('/admin/keys');
    assert.equal(e.status, 200);
    assert.match(
      e.message,
      /^GET http:\/\/127\.0\.0\.1:\d+\/admin\/keys: HTTP 200 OK, not the admin API's JSON/,
    );
    assert.match(e.message, /"<!doctype html><title>Sign in<\/title>/);
  });

  it('an empty error answer says so; a JSON error still gives its message', async () => {
    assert.match(
      (await failure('/admin/empty')).message,
      /: HTTP 503 Service Unavailable, with an empty body/,
    );
    assert.equal(
      (await failure('/admin/other')).message,
      `GET ${target.url}/admin/other: HTTP 404: No such thing.`,
    );
  });

  it('a long body is cut', async () => {
    const big = createServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('x'.repeat(10_000));
    });
    await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(big.address() as AddressInfo).port}`;
      const e = await adminRequest({ url, token: 't' }, 'GET', '/admin/usage').then(
        () => assert.fail('should fail'),
        (err: unknown) => err as Error,
      );
      assert.ok(e.message.length < 600, `${e.message.length} characters`);
      assert.match(e.message, /"x{200}"… \(10000 bytes\)/);
    } finally {
      await new Promise<void>((r) => big.close(() => r()));
    }
  });
});
