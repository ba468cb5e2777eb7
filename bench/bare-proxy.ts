/**
 * The floor for `npm run bench`: a bare reverse proxy (Fastify + an undici Pool, the same two
 * libraries Portico's HTTP path is built on) that forwards POST /v1/chat/completions to the
 * mock upstream and passes the answer back — JSON parsed and re-serialized, streams piped through —
 * with no authentication, limits, routing, metrics or accounting. The benchmark runs it as its own
 * process beside the gateway so that "Portico CPU per request / bare proxy CPU per request" is
 * measured in one run on the same machine, whatever that machine's speed is at the moment.
 *
 * Usage: tsx bench/bare-proxy.ts PORT UPSTREAM_ORIGIN
 */
import Fastify from 'fastify';
import { Pool } from 'undici';

const port = Number(process.argv[2]);
const upstream = process.argv[3];
if (!port || !upstream) throw new Error('usage: bare-proxy.ts PORT UPSTREAM_ORIGIN');

const pool = new Pool(upstream, { connections: 128, keepAliveTimeout: 30_000 });
const app = Fastify({ logger: false });
app.get('/health', async () => ({ status: 'ok' }));
app.post('/v1/chat/completions', async (req, reply) => {
  const body: Record<string, unknown> = { ...(req.body as Record<string, unknown>), model: 'mock-model' };
  const res = await pool.request({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (body.stream === true) {
    reply.code(res.statusCode).header('content-type', 'text/event-stream');
    return reply.send(res.body);
  }
  reply.code(res.statusCode);
  return res.body.json();
});
await app.listen({ port, host: '127.0.0.1' });
