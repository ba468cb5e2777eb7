/**
 * The lower floor for `npm run bench`: a bare node:http reverse proxy with an undici Pool. It reads
 * the request body, parses the JSON, sets the backend's model name, re-serialises it, forwards it,
 * and writes the upstream's answer back as it arrives (bytes, streams included) with backpressure.
 * No framework, authentication, limits, routing, metrics or accounting: what two HTTP hops cost in
 * Node on this machine. Run as its own process beside the gateway (see gateway-bench.ts).
 *
 * Usage: tsx bench/bare-node-proxy.ts PORT UPSTREAM_ORIGIN
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const port = Number(process.argv[2]);
const upstream = process.argv[3];
if (!port || !upstream) throw new Error('usage: bare-node-proxy.ts PORT UPSTREAM_ORIGIN');

const pool = new Pool(upstream, { connections: 128, keepAliveTimeout: 30_000 });
const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
    body.model = 'mock-model';
    pool
      .request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      .then(
        (up) => {
          res.writeHead(up.statusCode, {
            'content-type': String(up.headers['content-type'] ?? 'application/json'),
          });
          up.body.on('data', (c: Buffer) => {
            if (!res.write(c)) {
              up.body.pause();
              res.once('drain', () => up.body.resume());
            }
          });
          up.body.on('end', () => res.end());
          up.body.on('error', () => res.destroy());
          res.on('close', () => {
            if (!up.body.readableEnded) up.body.destroy();
          });
        },
        () => {
          res.writeHead(502);
          res.end();
        },
      );
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
