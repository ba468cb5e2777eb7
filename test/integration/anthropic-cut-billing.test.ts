/**
 * An Anthropic stream cut short is billed by Anthropic's own counts where it sent them: the input
 * from message_start exactly, the output as the larger of the last message_delta's output_tokens
 * and the tokenizer's count of the text that reached the client. Before, a cut stream (the
 * upstream dropped, or the client went away) was billed the tokenizer's estimate of the prompt
 * and the delivered text: Anthropic's counts only reach the usage chunk at message_stop.
 *
 * A fake Anthropic server on loopback sends message_start (input_tokens 1234) and a few text
 * deltas, then drops the connection (with or without a message_delta first) or hangs until the
 * client disconnects; each case runs through /v1/chat/completions and through /v1/messages.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countText } from '../../src/tenancy/tokens.js';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const TENANT = 'cutter';
const KEY = 'sk-test-cutter';
const ADMIN = 'test-admin-token';
const INPUT_TOKENS = 1234;
/** What message_delta reports in the `delta` case: more than the text delivered before the cut. */
const DELTA_OUTPUT = 500;
const PIECES = ['Once upon a time, ', 'in a gateway far away, ', 'a stream was cut.'];
const DELIVERED = PIECES.join('');

const event = (type: string, data: Record<string, unknown>): string =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** message_start, one text block's deltas; `delta`: a message_delta (no message_stop) after them. */
function head(model: string, delta: boolean): string {
  let s =
    event('message_start', {
      message: {
        id: 'msg_cut',
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: INPUT_TOKENS, output_tokens: 1 },
      },
    }) + event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  for (const text of PIECES)
    s += event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
  if (delta) {
    s += event('content_block_stop', { index: 0 });
    s += event('message_delta', {
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: DELTA_OUTPUT },
    });
  }
  return s;
}

interface UsageRow {
  group: string;
  requests: number;
  tokens_in: number;
  tokens_out: number;
  estimated: number;
  partial: number;
}

describe('Anthropic streams cut short are billed by the counts Anthropic sent', () => {
  let upstream: Server;
  let gw: TestGateway;

  before(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const model = String((JSON.parse(body || '{}') as { model?: unknown }).model);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // `hang`: nothing more until the client (the gateway) goes away.
        res.write(head(model, model === 'delta'), () => {
          if (model !== 'hang') setTimeout(() => res.socket?.destroy(), 20);
        });
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    // One alias per case and path, so each ledger row holds one request.
    const models: Record<string, unknown> = {};
    for (const path of ['chat', 'messages'])
      for (const mode of ['drop', 'delta', 'hang'])
        models[`${path}-${mode}`] = {
          backends: [
            { id: `${path}-${mode}`, provider: 'anthropic', base_url: url, api_key: 'sk-ant', model: mode },
          ],
          health_check: { enabled: false },
          retry: { attempts: 1 },
        };
    gw = await startTestGateway(
      demoConfig({ tenants: [{ id: TENANT, api_keys: [{ value: KEY }] }], models }),
    );
  });
  after(async () => {
    await gw.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  /** The ledger row of `alias` once its one request is recorded. */
  async function rowOf(alias: string): Promise<UsageRow> {
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${gw.url}/admin/usage?tenant=${TENANT}&group_by=model`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      const row = ((await r.json()) as { data: UsageRow[] }).data.find((x) => x.group === alias);
      if (row && row.requests === 1) return row;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`no ledger row for ${alias}`);
  }

  function request(path: 'chat' | 'messages', alias: string, signal?: AbortSignal): Promise<Response> {
    const messages = [{ role: 'user', content: 'Tell me a story about gateways. '.repeat(5) }];
    return fetch(`${gw.url}/v1/${path === 'chat' ? 'chat/completions' : 'messages'}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: alias, stream: true, max_tokens: 1000, messages }),
      ...(signal ? { signal } : {}),
    });
  }

  for (const path of ['chat', 'messages'] as const) {
    describe(`through /v1/${path === 'chat' ? 'chat/completions' : 'messages'}`, () => {
      it('the upstream drops after the deltas: exact input, the delivered text as output (estimated)', async () => {
        const res = await request(path, `${path}-drop`);
        assert.equal(res.status, 200);
        const text = await res.text();
        assert.match(text, /a stream was cut\./);
        assert.match(text, /error/, 'the client is told the stream failed');
        const row = await rowOf(`${path}-drop`);
        // Before: the tokenizer's count of the prompt (about 40), not Anthropic's 1234.
        assert.equal(row.tokens_in, INPUT_TOKENS);
        assert.equal(row.tokens_out, countText(DELIVERED));
        assert.equal(row.estimated, 1, 'the output is Portico’s count');
        assert.equal(row.partial, 1);
      });

      it('the upstream drops after message_delta: its output_tokens are billed, not estimated', async () => {
        const res = await request(path, `${path}-delta`);
        assert.equal(res.status, 200);
        await res.text();
        const row = await rowOf(`${path}-delta`);
        assert.equal(row.tokens_in, INPUT_TOKENS);
        assert.equal(row.tokens_out, DELTA_OUTPUT);
        assert.equal(row.estimated, 0, 'both counts are Anthropic’s');
        assert.equal(row.partial, 1);
      });

      it('the client disconnects mid-stream: exact input, the delivered text as output', async () => {
        const controller = new AbortController();
        const res = await request(path, `${path}-hang`, controller.signal);
        assert.equal(res.status, 200);
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let seen = '';
        while (!seen.includes('a stream was cut.')) {
          const { value, done } = await reader.read();
          assert.equal(done, false, 'the stream ended before the last delta');
          seen += decoder.decode(value, { stream: true });
        }
        controller.abort();
        await reader.cancel().catch(() => undefined);
        const row = await rowOf(`${path}-hang`);
        assert.equal(row.tokens_in, INPUT_TOKENS);
        assert.equal(row.tokens_out, countText(DELIVERED));
        assert.equal(row.partial, 1);
      });
    });
  }
});
