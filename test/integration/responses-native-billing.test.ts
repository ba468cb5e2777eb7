/**
 * A native Responses stream that ends without the backend's terminal event — the upstream cut, or
 * the client gone — is billed for its prompt and what reached the client, marked partial (review,
 * 2026-12-07: such a stream was billed nothing: no usage, no estimate, not partial).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestContext } from '../../src/pipeline/context.js';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ev = (o: { type: string } & Record<string, unknown>): string =>
  `event: ${o.type}\ndata: ${JSON.stringify(o)}\n\n`;

interface Billed {
  status: number;
  partial: boolean;
  tokens?: { input: number; output: number; estimated: boolean };
}

describe('native Responses streams cut short are billed', () => {
  let upstream: Server;
  let gw: TestGateway;
  let mode: 'cut' | 'stall' = 'cut';
  const billed: Billed[] = [];

  async function answer(res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const resp = { id: 'resp_up', object: 'response', status: 'in_progress', output: [], model: 'x' };
    let n = 0;
    res.write(ev({ type: 'response.created', sequence_number: n++, response: resp }));
    res.write(
      ev({
        type: 'response.output_item.added',
        sequence_number: n++,
        output_index: 0,
        item: { type: 'message', id: 'msg_up', role: 'assistant', status: 'in_progress', content: [] },
      }),
    );
    for (let i = 0; i < 20; i++) {
      res.write(
        ev({
          type: 'response.output_text.delta',
          sequence_number: n++,
          item_id: 'msg_up',
          output_index: 0,
          content_index: 0,
          delta: `token${i} `,
        }),
      );
      await sleep(2);
    }
    if (mode === 'cut') res.destroy();
    else {
      await sleep(3000);
      res.end();
    }
  }

  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => void answer(res));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'acme-corp', allowed_models: ['nat'], api_keys: [{ value: ACME_KEY }] }],
        models: {
          nat: {
            backends: [
              { id: 'nat', provider: 'openai', base_url: `${url}/v1`, model: 'x', responses_api: 'native' },
            ],
            health_check: { enabled: false },
            retry: { attempts: 1 },
          },
        },
      }),
    );
    gw.gateway.deps.onFinish.push((ctx: RequestContext, status: number) => {
      const t = ctx.accountedTokens;
      billed.push({
        status,
        partial: ctx.partial === true,
        ...(t ? { tokens: { input: t.input, output: t.output, estimated: t.estimated } } : {}),
      });
    });
  });
  after(async () => {
    await gw.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  const body = JSON.stringify({
    model: 'nat',
    stream: true,
    input: 'Tell me a long story about many things. '.repeat(10),
  });
  const post = (signal?: AbortSignal): Promise<Response> =>
    fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      ...(signal ? { signal } : {}),
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body,
    });

  it('the upstream cut mid-stream: partial, prompt and delivered text billed', async () => {
    mode = 'cut';
    const n = billed.length;
    const text = await (await post()).text();
    assert.match(text, /token19/);
    for (let i = 0; i < 100 && billed.length === n; i++) await sleep(5);
    const b = billed[n];
    assert.equal(b?.partial, true);
    assert.ok((b?.tokens?.input ?? 0) > 50, JSON.stringify(b)); // before: no tokens at all
    assert.ok((b?.tokens?.output ?? 0) >= 20, JSON.stringify(b));
    assert.equal(b?.tokens?.estimated, true);
  });

  it('the client leaves mid-stream: the same', async () => {
    mode = 'stall';
    const n = billed.length;
    const ac = new AbortController();
    const res = await post(ac.signal);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let got = '';
    while (!got.includes('token15')) got += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    for (let i = 0; i < 200 && billed.length === n; i++) await sleep(5);
    const b = billed[n];
    assert.equal(b?.status, 499);
    assert.equal(b?.partial, true);
    assert.ok((b?.tokens?.input ?? 0) > 50, JSON.stringify(b));
    assert.ok((b?.tokens?.output ?? 0) > 0, JSON.stringify(b));
  });
});
