/**
 * Drill cancel-billing (issue 15 item 4): streams cancelled mid-way by their clients (the official
 * openai SDK, aborting after a random number of content chunks) are billed for what reached the
 * client. The ledger's output tokens of those requests, summed, must be within 5% of the tokens
 * the clients received (counted with the same tokenizer), every record marked partial, and the
 * tenant's quota use must equal the ledger. (Before: the ledger recorded tokens_out = 0.)
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
import { drillSize, FULL, recordDrill, type DrillFigure } from './support.js';

const TENANT = 'cancels';
const KEY = 'sk-drill-cancels';
const ADMIN = 'test-admin-token';
const STREAMS = drillSize(100, 1000);
const CONCURRENCY = 50;
const ANSWER_TOKENS = 300;
const TOLERANCE = 0.05;

interface Row {
  requests: number;
  tokens_in: number;
  tokens_out: number;
  partial: number;
}

async function ledger(gw: TestGateway): Promise<Row> {
  const r = await fetch(`${gw.url}/admin/usage?tenant=${TENANT}&group_by=day`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  const rows = ((await r.json()) as { data: Row[] }).data;
  return rows.reduce(
    (a, x) => ({
      requests: a.requests + x.requests,
      tokens_in: a.tokens_in + x.tokens_in,
      tokens_out: a.tokens_out + x.tokens_out,
      partial: a.partial + x.partial,
    }),
    { requests: 0, tokens_in: 0, tokens_out: 0, partial: 0 },
  );
}

async function quota(gw: TestGateway): Promise<{ usedTokens: number; reservedTokens: number }> {
  const r = await fetch(`${gw.url}/admin/tenants/${TENANT}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return ((await r.json()) as { usage: { day: { usedTokens: number; reservedTokens: number } } }).usage.day;
}

/** Deterministic spread of cancel points: 3..(ANSWER_TOKENS * 0.8) content chunks. */
function cancelAfter(i: number): number {
  return 3 + ((i * 7919) % Math.floor(ANSWER_TOKENS * 0.8));
}

describe('drill cancel-billing: cancelled streams are billed for what was delivered', () => {
  let sim: TestSim;
  let gw: TestGateway;
  const figures: DrillFigure[] = [];

  before(async () => {
    sim = await startTestSim({
      sim: { mode: 'lorem', output_tokens: ANSWER_TOKENS, itl_ms: 2 },
      models: ['sim'],
    });
    gw = await startTestGateway(
      demoConfig({
        tenants: [{ id: TENANT, api_keys: [{ value: KEY }], quota: { daily_tokens: 1_000_000_000 } }],
        models: {
          chat: {
            backends: [{ id: 'sim-up', provider: 'openai', base_url: sim.baseURL, model: 'sim' }],
            retry: { attempts: 1 },
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await sim.close();
    await recordDrill('cancel-billing', {
      title: `${STREAMS.toLocaleString('en-US')} streams cancelled mid-way by their clients (openai SDK, ${CONCURRENCY} at a time, ${ANSWER_TOKENS}-token answers)`,
      guarantee:
        'the ledger bills a cancelled stream for the output that reached the client (within 5% over all streams), marks it partial, and the quota commit uses the same tokens',
      figures,
      notes: [
        `${FULL ? 'full' : 'short'} form; simulator backend over HTTP (no usage in a cut stream: the gateway counts the delivered text with its tokenizer)`,
        'before: a cancelled stream was recorded with tokens_out = 0',
      ],
    });
  });

  it(`${STREAMS} cancelled streams: ledger output tokens within 5% of what the clients received`, async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: gw.baseURL, maxRetries: 0 });
    let next = 0;
    let receivedTokens = 0;
    let cancelled = 0;
    const worker = async (): Promise<void> => {
      while (next < STREAMS) {
        const i = next++;
        const controller = new AbortController();
        const stream = await client.chat.completions.create(
          {
            model: 'chat',
            messages: [{ role: 'user', content: `Stream ${i}: tell me a long story.` }],
            stream: true,
          },
          { signal: controller.signal },
        );
        let text = '';
        let pieces = 0;
        const stop = cancelAfter(i);
        try {
          for await (const chunk of stream) {
            const piece = chunk.choices[0]?.delta?.content;
            if (!piece) continue;
            text += piece;
            if (++pieces === stop) {
              controller.abort();
              break;
            }
          }
        } catch {
          // APIUserAbortError: the abort
        }
        if (pieces === stop) cancelled++;
        receivedTokens += countText(text);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // Finishing (and the ledger write) runs once the gateway sees each client go.
    let row = await ledger(gw);
    for (let i = 0; i < 200 && row.requests < STREAMS; i++) {
      await new Promise((r) => setTimeout(r, 50));
      row = await ledger(gw);
    }
    let q = await quota(gw);
    for (let i = 0; i < 200 && q.reservedTokens > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      q = await quota(gw);
    }
    const deviation = receivedTokens === 0 ? 1 : (row.tokens_out - receivedTokens) / receivedTokens;
    figures.push(
      {
        label: 'streams cancelled mid-way',
        value: cancelled,
        bound: `${STREAMS}`,
        ok: cancelled === STREAMS,
      },
      { label: 'output tokens the clients received (tokenizer)', value: receivedTokens, unit: 'tokens' },
      { label: 'output tokens in the ledger', value: row.tokens_out, unit: 'tokens' },
      {
        label: 'ledger output tokens vs received',
        value: `${(deviation * 100).toFixed(2)}%`,
        bound: `within ±${TOLERANCE * 100}%`,
        ok: Math.abs(deviation) <= TOLERANCE,
      },
      {
        label: 'ledger records marked partial',
        value: `${row.partial} of ${row.requests}`,
        bound: 'all',
        ok: row.partial === row.requests && row.requests === STREAMS,
      },
      {
        label: 'quota used tokens − ledger tokens (in + out)',
        value: q.usedTokens - (row.tokens_in + row.tokens_out),
        bound: '0',
        ok: q.usedTokens === row.tokens_in + row.tokens_out,
      },
    );
    assert.equal(cancelled, STREAMS, 'every stream was cancelled mid-way');
    assert.equal(row.requests, STREAMS, 'one ledger record per stream');
    assert.equal(row.partial, STREAMS, 'all partial');
    assert.ok(
      Math.abs(deviation) <= TOLERANCE,
      `ledger ${row.tokens_out} vs received ${receivedTokens} (${(deviation * 100).toFixed(2)}%)`,
    );
    assert.equal(q.usedTokens, row.tokens_in + row.tokens_out, 'quota and ledger agree');
  });
});
