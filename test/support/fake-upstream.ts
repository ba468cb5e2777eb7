/**
 * A fake LLM upstream for tests: Fastify on 127.0.0.1:0 that replays recorded fixtures and
 * records what it received. One instance speaks one protocol (`anthropic` or `openai`) with that
 * protocol's paths and a validator built from the public API's rules, so an adapter that sends
 * something the real API would refuse gets the real API's 400 (and the test sees it).
 *
 * Fixture selection: the `x-fixture` request header, else the body's `model`. For a streaming
 * request (`"stream": true`) `<name>.sse` is replayed if present, else `<name>.json`.
 *  - `<name>.json`: `{"status": 200, "headers": {...}, "body": {...}}`
 *  - `<name>.sse`: a raw recorded event stream, sent as text/event-stream with status 200.
 * A fixture whose name starts with `stream-hang` is written and then held open until the client
 * goes away; `waitForClientClose()` resolves when that happens (abort tests).
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

export type FakeProtocol = 'anthropic' | 'openai';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  fixture: string | undefined;
  /** Client port of the TCP connection (equal ports in a row = a reused keep-alive connection). */
  remotePort: number | undefined;
  /** Set when the protocol validator refused the request (the reply was the API's 400). */
  validationError?: string;
}

export interface FakeUpstream {
  baseUrl: string;
  readonly requests: RecordedRequest[];
  /** Resolves once `count` held-open (`stream-hang*`) responses have been closed by their client. */
  waitForClientClose(count?: number, timeoutMs?: number): Promise<void>;
  /** Number of held-open responses whose client has gone. */
  readonly clientCloses: number;
  close(): Promise<void>;
}

interface JsonFixture {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

function flat(h: FastifyRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The Messages API's request rules (https://docs.anthropic.com/en/api/messages), the ones adapters get wrong. */
export function validateAnthropicRequest(headers: Record<string, string>, body: unknown): string | undefined {
  if (!headers['x-api-key']) return 'x-api-key header is required';
  if (!headers['anthropic-version']) return 'anthropic-version header is required';
  if (!isObj(body)) return 'body must be a JSON object';
  if (typeof body['model'] !== 'string') return 'model: Field required';
  if (
    typeof body['max_tokens'] !== 'number' ||
    !Number.isInteger(body['max_tokens']) ||
    body['max_tokens'] < 1
  ) {
    return 'max_tokens: Field required';
  }
  const t = body['temperature'];
  if (t !== undefined && (typeof t !== 'number' || t < 0 || t > 1))
    return 'temperature: must be between 0 and 1';
  const msgs = body['messages'];
  if (!Array.isArray(msgs) || msgs.length === 0) return 'messages: at least one message is required';
  let prev: unknown;
  for (const [i, m] of msgs.entries()) {
    if (!isObj(m)) return `messages.${i}: must be an object`;
    if (m['role'] !== 'user' && m['role'] !== 'assistant')
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    if (i === 0 && m['role'] !== 'user') return 'messages.0.role: first message must use the "user" role';
    if (m['role'] === prev) return `messages.${i}: roles must alternate between "user" and "assistant"`;
    prev = m['role'];
    const c = m['content'];
    if (typeof c !== 'string' && !Array.isArray(c))
      return `messages.${i}.content: must be a string or a list of blocks`;
    if (Array.isArray(c)) {
      for (const [j, b] of c.entries()) {
        if (!isObj(b) || typeof b['type'] !== 'string')
          return `messages.${i}.content.${j}: block needs a type`;
        if (b['type'] === 'tool_result' && m['role'] !== 'user')
          return `messages.${i}.content.${j}: tool_result only in user turns`;
        if (b['type'] === 'tool_use' && m['role'] !== 'assistant')
          return `messages.${i}.content.${j}: tool_use only in assistant turns`;
        if (b['type'] === 'text' && (typeof b['text'] !== 'string' || b['text'] === '')) {
          return `messages.${i}.content.${j}.text: text content blocks must be non-empty`;
        }
      }
    }
  }
  if (body['tools'] !== undefined) {
    if (!Array.isArray(body['tools'])) return 'tools: must be a list';
    for (const [i, tool] of body['tools'].entries()) {
      if (!isObj(tool) || typeof tool['name'] !== 'string' || !isObj(tool['input_schema']))
        return `tools.${i}: name and input_schema required`;
    }
  }
  if (body['system'] !== undefined && typeof body['system'] !== 'string' && !Array.isArray(body['system'])) {
    return 'system: must be a string or a list of text blocks';
  }
  return undefined;
}

/** Minimal OpenAI chat rules (https://platform.openai.com/docs/api-reference/chat/create). */
export function validateOpenAIRequest(
  _headers: Record<string, string>,
  body: unknown,
  path: string,
): string | undefined {
  if (!isObj(body)) return 'body must be a JSON object';
  if (typeof body['model'] !== 'string') return 'you must provide a model parameter';
  if (path.endsWith('/chat/completions')) {
    const msgs = body['messages'];
    if (!Array.isArray(msgs) || msgs.length === 0) return "'messages' must be a non-empty array";
  }
  return undefined;
}

function errorBody(protocol: FakeProtocol, message: string): unknown {
  return protocol === 'anthropic'
    ? { type: 'error', error: { type: 'invalid_request_error', message } }
    : { error: { message, type: 'invalid_request_error', param: null, code: null } };
}

export interface FakeUpstreamOptions {
  protocol: FakeProtocol;
  fixturesDir: string;
}

export async function startFakeUpstream(opts: FakeUpstreamOptions): Promise<FakeUpstream> {
  const app: FastifyInstance = Fastify({
    logger: false,
    forceCloseConnections: true,
    bodyLimit: 16 * 1024 * 1024,
  });
  const requests: RecordedRequest[] = [];
  let clientCloses = 0;
  const closeWaiters: Array<() => void> = [];

  const load = (
    name: string,
    stream: boolean,
  ): { kind: 'sse'; text: string } | { kind: 'json'; fx: JsonFixture } | undefined => {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) return undefined;
    const sse = join(opts.fixturesDir, `${name}.sse`);
    const json = join(opts.fixturesDir, `${name}.json`);
    if (stream && existsSync(sse)) return { kind: 'sse', text: readFileSync(sse, 'utf8') };
    if (existsSync(json)) return { kind: 'json', fx: JSON.parse(readFileSync(json, 'utf8')) as JsonFixture };
    if (existsSync(sse)) return { kind: 'sse', text: readFileSync(sse, 'utf8') };
    return undefined;
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply, defaultFixture?: string): Promise<void> => {
    const headers = flat(req.headers);
    const body: unknown = req.body ?? null;
    const path = req.url.split('?')[0] ?? req.url;
    const model = isObj(body) && typeof body['model'] === 'string' ? body['model'] : undefined;
    const name = headers['x-fixture'] ?? model ?? defaultFixture;
    const rec: RecordedRequest = {
      method: req.method,
      path,
      headers,
      body,
      fixture: name,
      remotePort: req.socket.remotePort,
    };
    requests.push(rec);
    if (req.method === 'POST') {
      const problem =
        opts.protocol === 'anthropic'
          ? validateAnthropicRequest(headers, body)
          : validateOpenAIRequest(headers, body, path);
      if (problem !== undefined) {
        rec.validationError = problem;
        await reply.code(400).send(errorBody(opts.protocol, problem));
        return;
      }
    }
    const stream = isObj(body) && body['stream'] === true;
    const fx = name === undefined ? undefined : load(name, stream);
    if (fx === undefined) {
      const msg = `fake upstream: no fixture '${String(name)}' in ${opts.fixturesDir}`;
      await reply
        .code(404)
        .send(
          opts.protocol === 'anthropic'
            ? { type: 'error', error: { type: 'not_found_error', message: msg } }
            : { error: { message: msg, type: 'invalid_request_error', code: 'model_not_found' } },
        );
      return;
    }
    if (fx.kind === 'json') {
      await reply
        .code(fx.fx.status)
        .headers(fx.fx.headers ?? {})
        .send(fx.fx.body);
      return;
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    raw.write(fx.text);
    if (name !== undefined && name.startsWith('stream-hang')) {
      raw.on('close', () => {
        clientCloses++;
        for (const w of closeWaiters.splice(0)) w();
      });
      return; // held open until the client goes away (or the server closes)
    }
    raw.end();
  };

  const post = (path: string): void => {
    app.post(path, (req, reply) => handle(req, reply));
  };
  if (opts.protocol === 'anthropic') {
    post('/v1/messages');
    app.get('/v1/models', (req, reply) => handle(req, reply, 'models'));
  } else {
    for (const p of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/rerank', '/rerank'])
      post(p);
    app.get('/v1/models', (req, reply) => handle(req, reply, 'models'));
  }

  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fake upstream: no TCP address');
  const baseUrl = `http://127.0.0.1:${addr.port}${opts.protocol === 'openai' ? '/v1' : ''}`;

  return {
    baseUrl,
    requests,
    get clientCloses() {
      return clientCloses;
    },
    waitForClientClose(count = 1, timeoutMs = 5000): Promise<void> {
      if (clientCloses >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `fake upstream: ${clientCloses}/${count} held streams closed by the client after ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        const check = (): void => {
          if (clientCloses >= count) {
            clearTimeout(timer);
            resolve();
          } else closeWaiters.push(check);
        };
        closeWaiters.push(check);
      });
    },
    close: () => app.close(),
  };
}
