/**
 * One ledger record Postgres refuses (a NUL in its key id, which the config used to let through)
 * must not stop usage recording for everyone: before, the batch holding it failed (22021) and was
 * retried for ever, every tenant's records behind it stayed buffered, and GET /admin/usage — which
 * flushes the writer first — answered 500 (review, 2026-12-14, repro-pg-nul-keyid). Now the batch
 * is appended again one record at a time and only the refused record is dropped, counted and
 * logged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACME_KEY, CLOSED_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { series } from '../support/metrics.js';
import { dropTestState, reachablePostgres } from '../support/processes.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = { authorization: 'Bearer test-admin-token' };

describe('distributed: a ledger record Postgres refuses', () => {
  let gw: TestGateway | undefined;
  let pgUrl: string | undefined;
  let skip: string | undefined;
  let journalDir = '';
  const schema = `portico_refused_${randomBytes(4).toString('hex')}`;
  const prefix = `refused-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    const pg = await reachablePostgres();
    if ('reason' in pg) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${pg.reason}`);
      skip = pg.reason;
      return;
    }
    pgUrl = pg.url;
    journalDir = await mkdtemp(join(tmpdir(), 'portico-refused-journal-'));
    gw = await startTestGateway(
      demoConfig({
        state: {
          kind: 'distributed',
          redis: { url: REDIS_URL, key_prefix: prefix },
          postgres: { url: pgUrl, schema },
          journal_dir: journalDir,
        },
      }),
    );
  });
  after(async () => {
    await gw?.close();
    await dropTestState(pgUrl, [schema], REDIS_URL, [prefix]);
    if (journalDir) await rm(journalDir, { recursive: true, force: true });
  });

  async function chat(g: TestGateway, key: string): Promise<void> {
    const r = await fetch(`${g.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 200, await r.text());
  }

  it('is dropped alone: every other record, of every tenant, is written', async (t) => {
    if (skip || !gw) return t.skip(`SKIPPED: ${skip}`);
    const writer = gw.gateway.tenancy!.state.ledgerWriter;
    await chat(gw, ACME_KEY);
    // The record a config key `id: "ci\u0000key"` gave every request of that key.
    writer.write({
      id: 'req_poison',
      request_id: 'req_poison',
      time: Date.now(),
      tenant: 'acme-corp',
      key_id: 'ci\u0000key',
      model: 'default',
      backend: 'sim-echo',
      tokens_in: 1,
      tokens_out: 1,
      estimated: false,
      cost_usd: 0,
      latency_ms: 1,
      status: 200,
      cache_hit: false,
    });
    await chat(gw, CLOSED_KEY);
    await chat(gw, ACME_KEY);

    const r = await fetch(`${gw.url}/admin/usage?group_by=month`, { headers: ADMIN });
    const body = (await r.json()) as { data: Array<{ tenant: string; requests: number }> };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.deepEqual(
      body.data.map((row) => [row.tenant, row.requests]),
      [
        ['acme-corp', 2],
        ['closed-ai', 1],
      ],
    );
    const stats = writer.stats();
    assert.deepEqual([stats.buffered, stats.refused, stats.written], [0, 1, 3]);
    assert.deepEqual(await series(gw, 'portico_ledger_dropped_total'), { '': 1 });
  });
});
