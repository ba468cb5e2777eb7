/**
 * Pass-through streams (OpenAI SSE upstream -> OpenAI SSE client): what the client receives equals,
 * byte for byte, what the upstream sent, except the edits listed in docs/architecture.md — the
 * usage-only chunk and `"usage":null` fields hidden when the client did not ask for usage, `model`
 * rewritten to the alias, an upstream error event replaced by Portico's, Portico's error event when
 * the upstream ends without [DONE]. The upstream writes its events in awkward pieces (split
 * mid-event, several in one write, comments) to show the forwarding does not depend on them.
 * Accounting still sees the usage, and a stream without usage still yields the delivered text.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { RequestContext } from '../../src/pipeline/context.js';

const chunk = (model: string, content: string, extra = ''): string =>
  `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"${model}","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}]${extra}}\n\n`;
const usageChunk = (model: string): string =>
  `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"${model}","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}}\n\n`;

/** The upstream's script for one prompt: the pieces it writes, in order. */
function script(prompt: string, model: string): string[] {
  const a = chunk(model, 'Hello', ',"usage":null');
  const b = chunk(model, ' "quoted" [DONE] data: x', ',"usage":null');
  const c = chunk(model, ' wörld', ',"usage":null');
  const u = usageChunk(model);
  switch (prompt) {
    case 'cut':
      return [a, b];
    case 'error':
      return [a, 'data: {"error":{"message":"upstream overloaded","type":"server_error","code":503}}\n\n'];
    case 'no-usage':
      return [chunk(model, 'Hello'), chunk(model, ' there'), 'data: [DONE]\n\n'];
    default:
      // Split mid-event, mid-key and mid-UTF-8 character; a comment; two events in one write.
      return [
        ': keep-alive\n\n' + a.slice(0, 17),
        a.slice(17, 60),
        a.slice(60) + b,
        Buffer.from(c).subarray(0, 120).toString('latin1'),
        Buffer.from(c).subarray(120).toString('latin1'),
        u + 'data: [DONE]\n\n',
      ];
  }
}

describe('pass-through streams', () => {
  let upstream: Server;
  let gw: TestGateway;
  const finished: Array<{
    usage: RequestContext['usage'];
    status: number;
    outputChars?: string;
    delivered?: string;
  }> = [];
  /** What the upstream sent for the last request, as bytes. */
  let sent = Buffer.alloc(0);

  before(async () => {
    upstream = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
          model: string;
          messages: Array<{ content: string }>;
        };
        const prompt = body.messages[body.messages.length - 1]?.content ?? '';
        const pieces = script(prompt, body.model).map((p, i) =>
          // pieces 3 and 4 of the default script split a UTF-8 character: written as raw bytes
          prompt === 'split' && (i === 3 || i === 4) ? Buffer.from(p, 'latin1') : Buffer.from(p),
        );
        sent = Buffer.concat(pieces);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const next = (): void => {
          if (i < pieces.length) {
            res.write(pieces[i++]);
            setTimeout(next, 2);
          } else res.end();
        };
        next();
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    const backend = (id: string, model: string) => ({
      backends: [{ id, provider: 'openai', base_url: url, model }],
      retry: { attempts: 1 },
      health_check: { enabled: false },
    });
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', prompt_policy: 'none', api_keys: [{ value: ACME_KEY }] }],
        cache: { enabled: false },
        models: { same: backend('b-same', 'same'), pt: backend('b-pt', 'upstream-model-x') },
      }),
    );
    gw.gateway.deps.onFinish.push((ctx, status) =>
      finished.push({
        usage: ctx.usage,
        status,
        ...(ctx.outputChars !== undefined ? { outputChars: ctx.outputChars } : {}),
        ...(ctx.deliveredText ? { delivered: ctx.deliveredText() } : {}),
      }),
    );
  });
  after(async () => {
    await gw.close();
    await new Promise((r) => upstream.close(r));
  });

  const stream = async (model: string, prompt: string, includeUsage: boolean) => {
    const res = await request(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: prompt }],
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      }),
    });
    const got = Buffer.from(await res.body.arrayBuffer());
    await new Promise((r) => setTimeout(r, 20));
    return { status: res.statusCode, headers: res.headers, got, last: finished[finished.length - 1] };
  };

  it('forwards the upstream bytes unchanged when nothing needs editing', async () => {
    const r = await stream('same', 'split', true);
    assert.equal(r.status, 200);
    assert.equal(r.got.toString('latin1'), sent.toString('latin1'));
    assert.ok(r.got.equals(sent));
    assert.equal(r.headers['x-portico-upstream-model'], undefined);
    assert.deepEqual(r.last?.usage, { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    assert.equal(r.last?.status, 200);
  });

  it('hides the usage chunk and "usage":null fields when the client did not ask for usage', async () => {
    const r = await stream('same', 'split', false);
    const expected = sent.toString('utf8').replace(usageChunk('same'), '').replaceAll(',"usage":null', '');
    assert.equal(r.got.toString('utf8'), expected);
    // Accounting still has the usage the client did not see.
    assert.deepEqual(r.last?.usage, { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
  });

  it('rewrites model to the alias and names the upstream model in x-portico-upstream-model', async () => {
    const r = await stream('pt', 'split', true);
    assert.equal(r.headers['x-portico-upstream-model'], 'upstream-model-x');
    const expected = sent.toString('utf8').replaceAll('"model":"upstream-model-x"', '"model":"pt"');
    assert.equal(r.got.toString('utf8'), expected);
  });

  it('replaces an upstream error event with Portico’s and stops', async () => {
    const r = await stream('same', 'error', true);
    const text = r.got.toString('utf8');
    const firstEvent = script('error', 'same')[0] as string;
    assert.ok(text.startsWith(firstEvent), text);
    const rest = text.slice(firstEvent.length);
    const err = JSON.parse(rest.replace(/^data: /, '').trim()) as { error: { type: string; code: string } };
    // Portico's catalog error (its code and type), not the upstream's event.
    assert.equal(err.error.code, 'upstream_unavailable', rest);
    assert.notEqual(err.error.type, 'server_error');
    assert.notEqual(r.last?.status, 200);
  });

  it('ends a stream cut without [DONE] with Portico’s error event', async () => {
    const r = await stream('same', 'cut', true);
    const text = r.got.toString('utf8');
    const pieces = script('cut', 'same');
    assert.ok(text.startsWith(pieces.join('')));
    const rest = text.slice(pieces.join('').length);
    assert.match(rest, /^data: \{"error":/);
    assert.doesNotMatch(text, /\[DONE\]\n\n$/);
    assert.equal(r.last?.status, 502);
    // What reached the client before the cut, for billing a failed or cancelled stream.
    assert.equal(r.last?.delivered, 'Hello "quoted" [DONE] data: x');
  });

  it('journals the ledger record before the [DONE] event is written to the client', async () => {
    // The crash guarantee (docs/state.md): once a client can have a stream's end, its record is
    // in the journal. [DONE] arrives in the same upstream read as the last chunks here, so it must
    // be held back and go out with the response's end, after the record was written.
    const writer = gw.gateway.deps.tenancy?.state.ledgerWriter;
    assert.ok(writer, 'the test gateway has a ledger writer');
    const events: string[] = [];
    const origWrite = writer.write.bind(writer);
    const resWrite = ServerResponse.prototype.write;
    const resEnd = ServerResponse.prototype.end;
    // Only the gateway's responses (the fake upstream in this process writes [DONE] too).
    const mark = (res: ServerResponse, chunk: unknown): void => {
      if ((res.socket as { server?: unknown } | null)?.server === upstream) return;
      if ((typeof chunk === 'string' || Buffer.isBuffer(chunk)) && String(chunk).includes('data: [DONE]'))
        events.push('[DONE] written');
    };
    writer.write = (...args: Parameters<typeof origWrite>) => {
      events.push('record written');
      return origWrite(...args);
    };
    ServerResponse.prototype.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      mark(this, chunk);
      return (resWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof resWrite;
    ServerResponse.prototype.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      mark(this, chunk);
      return (resEnd as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } as typeof resEnd;
    try {
      for (const prompt of ['split', 'no-usage']) {
        events.length = 0;
        const r = await stream('same', prompt, true);
        assert.ok(r.got.toString('utf8').endsWith('data: [DONE]\n\n'));
        assert.deepEqual(events, ['record written', '[DONE] written'], prompt);
      }
    } finally {
      writer.write = origWrite;
      ServerResponse.prototype.write = resWrite;
      ServerResponse.prototype.end = resEnd;
    }
  });

  it('keeps the delivered text for an estimate when the upstream reports no usage', async () => {
    const r = await stream('same', 'no-usage', false);
    assert.ok(r.got.equals(sent));
    assert.equal(r.last?.usage, undefined);
    assert.equal(r.last?.outputChars, 'Hello there');
  });
});

describe('pass-through streams to a client that stops reading', () => {
  let upstream: Server;
  let gw: TestGateway;
  const EVENTS = 30_000; // ~33 MB: far more than the sockets between them hold
  let upstreamWrote = 0;
  let upstreamClosed = false;
  const finished: number[] = [];

  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        upstreamWrote = 0;
        upstreamClosed = false;
        res.on('close', () => (upstreamClosed = true));
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const pad = 'x'.repeat(1000);
        const more = (): void => {
          while (upstreamWrote < EVENTS)
            if (!res.write(chunk('big', `${upstreamWrote++}${pad}`))) return void res.once('drain', more);
          res.end('data: [DONE]\n\n');
        };
        more();
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    gw = await startTestGateway(
      demoConfig({
        server: { host: '127.0.0.1', port: 0, request_timeout_ms: 1_500 },
        tenants: [{ id: 'acme-corp', prompt_policy: 'none', api_keys: [{ value: ACME_KEY }] }],
        cache: { enabled: false },
        models: {
          big: {
            backends: [{ id: 'b-big', provider: 'openai', base_url: url, model: 'big' }],
            retry: { attempts: 1 },
            health_check: { enabled: false },
          },
        },
      }),
    );
    gw.gateway.deps.onFinish.push((_ctx, status) => finished.push(status));
  });
  after(async () => {
    await gw.close();
    await new Promise((r) => upstream.close(r));
  });

  it('reads the upstream only as fast as the client takes it, and the deadline still ends the request', async () => {
    const { connect } = await import('node:net');
    const { port } = new URL(gw.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const body = JSON.stringify({ model: 'big', stream: true, messages: [{ role: 'user', content: 'go' }] });
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ACME_KEY}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    socket.pause(); // never read: the gateway's writes fill the socket, then it must stop reading upstream
    const started = Date.now();
    try {
      await new Promise((r) => setTimeout(r, 700));
      assert.ok(upstreamWrote > 0, 'the stream started');
      assert.ok(
        upstreamWrote < EVENTS,
        `the upstream wrote all ${EVENTS} events to a client that reads nothing`,
      );
      assert.equal(finished.length, 0, 'still streaming (paused) before the deadline');
      // The deadline (request_timeout_ms) aborts the upstream call of a paused stream; the request
      // is finished without waiting for the client to read again.
      const until = Date.now() + 5_000;
      while (finished.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      assert.equal(finished.length, 1, 'the request finished');
      assert.ok(Date.now() - started < 4_000, `finished ${Date.now() - started} ms after the start`);
      // The upstream server sees its socket close a few event-loop turns after the request
      // finished (both run in this process; under load later still: CI once saw it unset here).
      const closedBy = Date.now() + 2_000;
      while (!upstreamClosed && Date.now() < closedBy) await new Promise((r) => setTimeout(r, 10));
      assert.ok(upstreamClosed, 'the upstream request was closed');
    } finally {
      socket.destroy();
    }
  });
});
