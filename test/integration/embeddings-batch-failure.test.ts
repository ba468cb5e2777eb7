/**
 * A large embeddings request goes upstream in batches; when one batch fails (review, 2026-12-08)
 * the client got the error, but the other workers kept sending batches upstream after the reply,
 * and the batches that had succeeded upstream were not billed (ledger tokens_in 0). Now no batch
 * starts after a failure, the batches in flight are aborted, the reply waits for them, and the
 * completed batches are billed (their usage summed, the record partial).
 *
 * The upstream is a small OpenAI-compatible server on loopback: a batch holding `FAIL` is refused
 * with a 400 after 150 ms, one holding `SLOW` takes 5 s, the others answer after 20 ms with
 * 10 tokens per input.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const KEY = 'sk-embed-batches';
const ADMIN = { authorization: 'Bearer test-admin-token' };

describe('embeddings batching: a failed batch', () => {
  let up: http.Server;
  let gw: TestGateway;
  const seen = { started: 0, answered: 0, aborted: 0 };

  before(async () => {
    up = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        if (!(req.url ?? '').endsWith('/embeddings')) return res.end('{"object":"list","data":[]}');
        seen.started++;
        const input = (JSON.parse(raw) as { input: string[] }).input;
        res.setHeader('content-type', 'application/json');
        res.on('close', () => {
          if (!res.writableFinished) seen.aborted++;
        });
        const answer = (): void => {
          if (res.destroyed) return;
          seen.answered++;
          res.end(
            JSON.stringify({
              object: 'list',
              model: 'e5',
              data: input.map((_, index) => ({ object: 'embedding', index, embedding: [0.1] })),
              usage: { prompt_tokens: 10 * input.length, total_tokens: 10 * input.length },
            }),
          );
        };
        if (input.includes('FAIL'))
          setTimeout(() => {
            res.statusCode = 400;
            res.end('{"error":{"message":"input 4 is not allowed","type":"invalid_request_error"}}');
          }, 150);
        else setTimeout(answer, input.includes('SLOW') ? 5_000 : 20);
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(up.address() as { port: number }).port}/v1`;
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: 'emb', api_keys: [{ value: KEY }] }],
        models: {
          emb: {
            backends: [{ id: 'e5', provider: 'openai', base_url: base, api_key: 'x', model: 'e5' }],
            embeddings_batch_size: 2,
            health_check: { enabled: false },
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    up.closeAllConnections();
    await new Promise((r) => up.close(r));
  });

  it('stops the other batches, aborts those in flight, and bills the ones that ran', async () => {
    // 40 batches of 2, 4 at a time: batch 2 fails at 150 ms, while batch 3 (SLOW) still runs and
    // the two other workers have been through a handful of 20 ms batches.
    const input = ['a', 'b', 'c', 'd', 'FAIL', 'x', 'SLOW', 'y'];
    for (let i = 0; i < 72; i++) input.push(`input ${i}`);
    const res = await fetch(`${gw.baseURL}/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'emb', input, encoding_format: 'float' }),
    });
    const startedAtReply = seen.started;
    const answeredAtReply = seen.answered;
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { message: string; type: string } };
    assert.match(body.error.message, /input 4 is not allowed/);

    // The batch in flight (SLOW) was aborted, not left to run its 5 s.
    for (let i = 0; i < 50 && seen.aborted === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(seen.aborted >= 1, 'the batch in flight was not aborted');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.started, startedAtReply, 'batches were sent upstream after the reply');
    assert.ok(startedAtReply < 40, `every batch went upstream (${startedAtReply})`);
    assert.equal(seen.answered, answeredAtReply);

    // The batches that ran upstream are billed: 10 tokens per input, 2 inputs per batch (one the
    // upstream answered as the abort came may not have reached the gateway: not billed).
    const id = res.headers.get('x-request-id') ?? '';
    const rec = (await (await fetch(`${gw.url}/admin/requests/${id}`, { headers: ADMIN })).json()) as {
      status: number;
      tokens_in: number;
      tokens_estimated: boolean;
      partial: boolean;
    };
    assert.equal(rec.status, 400);
    assert.ok(rec.tokens_in >= 20 && rec.tokens_in % 20 === 0, JSON.stringify(rec));
    assert.ok(
      rec.tokens_in <= 20 * answeredAtReply,
      `${rec.tokens_in} billed for ${answeredAtReply} batches`,
    );
    assert.equal(rec.tokens_estimated, false);
    assert.equal(rec.partial, true);
    // And in the usage ledger (written in batches off the request path).
    let row: { tokens_in: number; partial: number } | undefined;
    for (let i = 0; i < 100 && !row; i++) {
      const usage = (await (
        await fetch(`${gw.url}/admin/usage?tenant=emb&group_by=model`, { headers: ADMIN })
      ).json()) as { data: Array<{ group: string; tokens_in: number; partial: number }> };
      row = usage.data.find((r) => r.group === 'emb');
      if (!row) await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual([row?.tokens_in, row?.partial], [rec.tokens_in, 1]);
  });
});
