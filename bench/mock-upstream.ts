/**
 * The upstream for `npm run bench`: a bare node:http server that answers POST /v1/chat/completions
 * like an OpenAI-compatible backend — a JSON answer at once, or an SSE stream of CHUNKS content
 * chunks (each its own write, one event-loop turn apart), a usage chunk when asked, then [DONE].
 * Its `model` is whatever the request named (the backend's model name), as real servers do.
 * Cheap on purpose: the benchmark measures the proxies in front of it, not it.
 *
 * Usage: tsx bench/mock-upstream.ts PORT [CHUNKS]
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const CHUNKS = Number(process.argv[3] ?? 20);
if (!port) throw new Error('usage: mock-upstream.ts PORT [CHUNKS]');

let seq = 0;
const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(req.url === '/v1/models' ? '{"object":"list","data":[]}' : '{"status":"ok"}');
    return;
  }
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
      model: string;
      stream?: boolean;
      max_tokens?: number;
      stream_options?: { include_usage?: boolean };
    };
    const id = `chatcmpl-mock${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const model = JSON.stringify(body.model);
    const usage = `{"prompt_tokens":12,"completion_tokens":${CHUNKS},"total_tokens":${12 + CHUNKS}}`;
    if (body.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        `{"id":"${id}","object":"chat.completion","created":${created},"model":${model},"choices":[{"index":0,"message":{"role":"assistant","content":"${'word '.repeat(CHUNKS).trim()}"},"finish_reason":"stop"}],"usage":${usage}}`,
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${model},"choices":[{"index":0,"delta":`;
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (i < CHUNKS) {
        const delta = i === 0 ? '{"role":"assistant","content":"word"}' : '{"content":" word"}';
        const finish = i === CHUNKS - 1 ? '"stop"' : 'null';
        res.write(`${head}${delta},"finish_reason":${finish}}]}\n\n`);
        i++;
        setImmediate(next);
        return;
      }
      if (body.stream_options?.include_usage === true)
        res.write(
          `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${model},"choices":[],"usage":${usage}}\n\n`,
        );
      res.end('data: [DONE]\n\n');
    };
    next();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
