/**
 * Cancelled and broken-off streams are billed for what was delivered (issue 15 item 4): the
 * official openai SDK aborts a stream mid-way, or the upstream (the simulator over HTTP) cuts it
 * off; the ledger record counts the output that reached the client (the tokenizer: the upstream
 * sent no usage), is marked partial in the usage report, and the quota commit uses the same
 * tokens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
import { countText } from '../../src/tenancy/tokens.js';

const TENANT = 'streamer';
const KEY = 'sk-test-streamer';
const ADMIN = 'test-admin-token';

interface UsageRow {
  tenant: string;
  group: string;
  requests: number;
  tokens_in: number;
  tokens_out: number;
  partial: number;
}

async function usageRows(gw: TestGateway, model: string): Promise<UsageRow[]> {
  const r = await fetch(`${gw.url}/admin/usage?tenant=${TENANT}&group_by=model`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { data: UsageRow[] };
  return body.data.filter((row) => row.group === model);
}

/** The ledger row of `model` once its one request is recorded (finishing runs after the stream ends). */
async function rowOf(gw: TestGateway, model: string): Promise<UsageRow> {
  for (let i = 0; i < 100; i++) {
    const row = (await usageRows(gw, model))[0];
    if (row && row.requests === 1) return row;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ledger row for ${model}`);
}

async function usedTokens(gw: TestGateway): Promise<{ usedTokens: number; reservedTokens: number }> {
  const r = await fetch(`${gw.url}/admin/tenants/${TENANT}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return ((await r.json()) as { usage: { day: { usedTokens: number; reservedTokens: number } } }).usage.day;
}

async function settled(gw: TestGateway): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const t = await usedTokens(gw);
    if (t.reservedTokens === 0) return t.usedTokens;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('reservations not settled');
}

describe('partial billing: cancelled and broken-off streams', () => {
  let slow: TestSim;
  let broken: TestSim;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    slow = await startTestSim({ sim: { mode: 'lorem', output_tokens: 400, itl_ms: 10 }, models: ['sim'] });
    broken = await startTestSim({
      sim: {
        mode: 'lorem',
        output_tokens: 400,
        itl_ms: 2,
        faults: { disconnect_rate: 1, disconnect_after_chunks: 12 },
      },
      models: ['sim'],
    });
    const remote = (sim: TestSim, id: string) => ({
      backends: [{ id, provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
      retry: { attempts: 1 },
    });
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: TENANT, api_keys: [{ value: KEY }], quota: { daily_tokens: 1_000_000 } }],
        models: { slow: remote(slow, 'slow-up'), broken: remote(broken, 'broken-up') },
      }),
    );
    client = new OpenAI({ apiKey: KEY, baseURL: gw.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await slow.close();
    await broken.close();
  });

  it('a stream the client aborts mid-way is billed for the text it was sent, marked partial', async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'slow', messages: [{ role: 'user', content: 'Tell me a long story.' }], stream: true },
      { signal: controller.signal },
    );
    let text = '';
    let pieces = 0;
    try {
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta?.content;
        if (piece) {
          text += piece;
          if (++pieces === 40) {
            controller.abort();
            break;
          }
        }
      }
    } catch (err) {
      // The SDK ends the iteration quietly on abort, or throws its APIUserAbortError.
      assert.match(String(err), /abort/i);
    }
    assert.equal(pieces, 40, 'the loop stopped at the abort');
    const received = countText(text);
    assert.ok(received > 0);
    const row = await rowOf(gw, 'slow');
    assert.equal(row.partial, 1, 'marked partial');
    // What the gateway wrote before it saw the client go: at least what the client read, and
    // not the whole 400-token answer (before: 0).
    assert.ok(row.tokens_out >= received, `billed ${row.tokens_out} < received ${received}`);
    assert.ok(row.tokens_out <= received + 20, `billed ${row.tokens_out}, client read ${received}`);
    assert.ok(row.tokens_in > 0, 'the prompt is billed');
    assert.equal(await settled(gw), row.tokens_in + row.tokens_out, 'the quota commit uses the same tokens');
  });

  it('a stream the upstream breaks off is billed for what reached the client, marked partial', async () => {
    const before = await settled(gw);
    const stream = await client.chat.completions.create({
      model: 'broken',
      messages: [{ role: 'user', content: 'Tell me a long story.' }],
      stream: true,
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    });
    assert.ok(text.length > 0, 'some text arrived before the cut');
    const row = await rowOf(gw, 'broken');
    assert.equal(row.partial, 1);
    assert.equal(row.tokens_out, countText(text), 'exactly what the client got');
    assert.equal((await settled(gw)) - before, row.tokens_in + row.tokens_out);
  });

  it('a stream that completes is not partial', async () => {
    const stream = await client.chat.completions.create({
      model: 'slow',
      messages: [{ role: 'user', content: 'Short one.' }],
      max_tokens: 5,
      stream: true,
    });
    for await (const chunk of stream) void chunk;
    const rows = await usageRows(gw, 'slow');
    for (let i = 0; i < 100 && (rows[0]?.requests ?? 0) < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      rows.splice(0, rows.length, ...(await usageRows(gw, 'slow')));
    }
    assert.equal(rows[0]?.requests, 2);
    assert.equal(rows[0]?.partial, 1, 'still only the aborted one');
  });
});
