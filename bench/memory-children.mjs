// Child processes of bench/memory-bench.ts, in plain JavaScript (no TypeScript loader in their RSS):
//   node bench/memory-children.mjs upstream PORT            node:http mock of OpenAI chat completions
//   node bench/memory-children.mjs bare PORT UPSTREAM       the floor: a bare node:http proxy
import { Buffer } from 'node:buffer';
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [role, portArg, upstream] = process.argv.slice(2);
const port = Number(portArg);

function health(req, res) {
  if (req.method !== 'GET') return false;
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  return true;
}

function readBody(req, done) {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => done(Buffer.concat(parts).toString()));
}

if (role === 'upstream') {
  // Answered at once; streams are 20 content chunks, a finish chunk, a usage chunk and [DONE],
  // one write each (as a backend producing tokens does).
  const words = Array.from({ length: 20 }, (_, i) => `word${i} `);
  const base = { id: 'chatcmpl-mock', created: 1700000000, model: 'mock' };
  const usage = { prompt_tokens: 20, completion_tokens: 20, total_tokens: 40 };
  const completion = JSON.stringify({
    ...base,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: words.join('') }, finish_reason: 'stop' }],
    usage,
  });
  const chunk = (extra) =>
    `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', ...extra })}\n\n`;
  const delta = (d, finish) => chunk({ choices: [{ index: 0, delta: d, finish_reason: finish }] });
  const streamBody = [
    delta({ role: 'assistant', content: '' }, null),
    ...words.map((w) => delta({ content: w }, null)),
    delta({}, 'stop'),
    chunk({ choices: [], usage }),
    'data: [DONE]\n\n',
  ];
  const server = createServer((req, res) => {
    if (health(req, res)) return;
    readBody(req, (text) => {
      let stream = false;
      try {
        stream = JSON.parse(text).stream === true;
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(completion);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (const c of streamBody) res.write(c);
      res.end();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, '127.0.0.1');
} else if (role === 'bare') {
  const pool = new Pool(upstream, { connections: 128, keepAliveTimeout: 30_000 });
  const server = createServer((req, res) => {
    if (health(req, res)) return;
    readBody(req, (text) => {
      let body;
      try {
        body = { ...JSON.parse(text), model: 'mock' };
      } catch {
        res.writeHead(400).end();
        return;
      }
      pool
        .request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
        .then(async (up) => {
          res.writeHead(up.statusCode, {
            'content-type': body.stream === true ? 'text/event-stream' : 'application/json',
          });
          for await (const c of up.body) res.write(c);
          res.end();
        })
        .catch(() => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
    });
  });
  server.keepAliveTimeout = 72_000;
  server.listen(port, '127.0.0.1');
} else {
  throw new Error('usage: memory-children.mjs upstream PORT | bare PORT UPSTREAM');
}
