/**
 * A prompt or an answer that quotes a special-token marker (`<|endoftext|>`, `<|endofprompt|>`) is
 * ordinary text: for a tenant with token limits the gateway counts it (admission's estimate, and
 * the answer's tokens when the upstream reports no usage) instead of failing the request. Before,
 * the tokenizer's default refused such text and the client got a 500. Real servers on loopback: the
 * gateway and a node:http upstream that answers without usage; the official SDK as the client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const MARKERS = 'What do <|endoftext|> and <|endofprompt|> mean in a prompt?';
const ANSWER = 'They are special tokens: <|endoftext|> ends a document.';

/** An OpenAI-compatible upstream that never reports usage, so the gateway counts the answer itself. */
function startUpstream(): Promise<{ server: Server; baseURL: string }> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      // Health checks and model listings.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"list","data":[]}');
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const stream = (JSON.parse(body) as { stream?: boolean }).stream === true;
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'chatcmpl-x',
            object: 'chat.completion',
            created: 1,
            model: 'm',
            choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finish_reason: 'stop' }],
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
        `data: ${JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.end(`${chunk({ role: 'assistant', content: ANSWER }, null)}${chunk({}, 'stop')}data: [DONE]\n\n`);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` }),
    ),
  );
}

describe('special-token markers are ordinary text for a tenant with token limits', () => {
  let gw: TestGateway;
  let upstream: { server: Server; baseURL: string };
  let client: OpenAI;

  before(async () => {
    upstream = await startUpstream();
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          {
            id: 'limited',
            api_keys: [{ value: 'sk-limited' }],
            limits: { tokens_per_minute: 1_000_000 },
            quota: { daily_tokens: 10_000_000 },
          },
        ],
        models: { m: { backends: [{ provider: 'openai', base_url: upstream.baseURL, model: 'm' }] } },
      }),
    );
    client = new OpenAI({ apiKey: 'sk-limited', baseURL: gw.baseURL, maxRetries: 0 });
  });

  after(async () => {
    await gw?.close();
    await new Promise((r) => upstream?.server.close(r));
  });

  it('a chat completion that quotes them is answered, and its estimated usage is accounted', async () => {
    const res = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: MARKERS }],
    });
    assert.equal(res.choices[0]?.message.content, ANSWER);
    const usage = await fetch(`${gw.url}/admin/usage?tenant=limited&group_by=model`, {
      headers: { authorization: 'Bearer test-admin-token' },
    });
    const body = (await usage.json()) as {
      data: Array<{ group: string; requests: number; tokens_in: number; tokens_out: number }>;
    };
    const row = body.data.find((r) => r.group === 'm');
    // The prompt's markers are several tokens each as text; the answer's too.
    assert.ok(row && row.requests === 1 && row.tokens_in > 20 && row.tokens_out > 10, JSON.stringify(body));
  });

  it('a stream that quotes them runs to its end', async () => {
    const stream = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: MARKERS }],
      stream: true,
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, ANSWER);
  });

  it('a system message that is only a marker is answered', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-limited', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'system', content: '<|endoftext|>' }] }),
    });
    assert.equal(res.status, 200, await res.text());
  });
});
