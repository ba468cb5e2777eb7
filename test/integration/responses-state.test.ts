/**
 * Stored Responses API responses in the real state families, through the gateway and the openai
 * SDK: embedded (SQLite under data_dir) survives a restart; distributed (Postgres) is shared by two
 * gateway replicas — a response created on one is read, continued and deleted on the other, and
 * never by another tenant. Text with NUL characters and unpaired surrogates round-trips exactly.
 * Postgres and Redis unreachable: the distributed case skips loudly (fails under CI=true).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import pg from 'pg';
import { Redis } from 'ioredis';
import { ACME_KEY, CLOSED_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URLS = process.env.PORTICO_TEST_POSTGRES_URL
  ? [process.env.PORTICO_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

/** Hostile text: NUL, lone surrogates, a valid pair, non-ASCII. */
const HOSTILE = 'nul:\u0000 lone:\ud800 low:\udc00 pair:\ud83d\ude00 é';

async function pgUrl(): Promise<string | undefined> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
  for (const url of PG_URLS) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.end();
      return url;
    } catch {
      await c.end().catch(() => undefined);
    }
  }
  return undefined;
}

function clients(gw: TestGateway): { acme: OpenAI; closed: OpenAI } {
  return {
    acme: new OpenAI({ baseURL: gw.baseURL, apiKey: ACME_KEY, maxRetries: 0 }),
    closed: new OpenAI({ baseURL: gw.baseURL, apiKey: CLOSED_KEY, maxRetries: 0 }),
  };
}

/** The raw JSON of a stored response (the SDK is not needed to see the exact text). */
async function inputItemsText(gw: TestGateway, id: string): Promise<string> {
  const res = await fetch(`${gw.baseURL}/responses/${id}/input_items`, {
    headers: { authorization: `Bearer ${ACME_KEY}` },
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { data: Array<{ content: Array<{ text: string }> }> };
  return body.data[0]?.content[0]?.text ?? '';
}

describe('stored responses in the state families', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const f of cleanups.reverse()) await f();
  });

  it('embedded (SQLite): survives a restart; hostile text round-trips exactly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-responses-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const cfg = demoConfig({ state: { kind: 'embedded', data_dir: dir } });
    let gw = await startTestGateway(cfg);
    const r = await clients(gw).acme.responses.create({ model: 'default', input: HOSTILE });
    assert.equal(await inputItemsText(gw, r.id), HOSTILE);
    await gw.close();
    gw = await startTestGateway(cfg);
    cleanups.push(() => gw.close());
    const { acme, closed } = clients(gw);
    assert.equal((await acme.responses.retrieve(r.id)).output_text, r.output_text);
    assert.equal(await inputItemsText(gw, r.id), HOSTILE);
    await assert.rejects(closed.responses.retrieve(r.id), OpenAI.NotFoundError);
    const next = await acme.responses.create({ model: 'default', previous_response_id: r.id, input: 'and?' });
    assert.ok(next.output_text.includes('and?'));
  });

  it('distributed (Postgres): two replicas share stored responses, per tenant', async (t) => {
    const url = await pgUrl();
    if (!url) {
      if (process.env.CI === 'true') assert.fail('CI=true but Redis or Postgres is unreachable');
      t.skip('SKIPPED: Redis or Postgres unreachable');
      return;
    }
    const schema = `portico_resp_${randomBytes(4).toString('hex')}`;
    const cfg = demoConfig({
      state: {
        kind: 'distributed',
        redis: { url: REDIS_URL, key_prefix: `portico-resp-${randomBytes(4).toString('hex')}:` },
        postgres: { url, schema },
        redis_failure_mode: 'fail_closed',
      },
    });
    const a = await startTestGateway(cfg);
    cleanups.push(() => a.close());
    const b = await startTestGateway(cfg);
    cleanups.push(() => b.close());
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    });
    const onA = clients(a);
    const onB = clients(b);
    const r = await onA.acme.responses.create({ model: 'default', input: HOSTILE });
    assert.equal((await onB.acme.responses.retrieve(r.id)).id, r.id);
    assert.equal(await inputItemsText(b, r.id), HOSTILE);
    await assert.rejects(onB.closed.responses.retrieve(r.id), OpenAI.NotFoundError);
    const next = await onB.acme.responses.create({
      model: 'default',
      previous_response_id: r.id,
      input: 'more',
    });
    assert.ok(next.output_text.includes('more'));
    await onB.acme.responses.delete(r.id);
    await assert.rejects(onA.acme.responses.retrieve(r.id), OpenAI.NotFoundError);
  });
});
