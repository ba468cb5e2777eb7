/**
 * GET /admin/usage flushes the ledger writer, then queries the store. While the ledger store fails
 * it used to answer 500 internal_error, and inside the writer's retry backoff 200 with totals that
 * silently left out every record still buffered (review, 2026-12-14, repro-usage-flush-failure).
 * A billing client must never get silently low totals: it is a 503 state_unavailable with a
 * retry-after that says how many records are not written yet, and once the store is back the
 * next call writes them at once (backoff or not) and counts them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { LedgerStore } from '../../src/state/index.js';

const ADMIN = { authorization: 'Bearer test-admin-token' };

interface ErrorBody {
  error: { code: string; message: string; type: string };
}

describe('GET /admin/usage while the ledger store fails', () => {
  let gw: TestGateway;
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'portico-usage-unwritten-'));
    gw = await startTestGateway(demoConfig({ state: { kind: 'embedded', data_dir: dataDir } }));
  });
  after(async () => {
    await gw.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function chat(): Promise<void> {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 200, await r.text());
  }

  it('answers 503 saying how many records are not written, never 200 with low totals', async () => {
    const ledger: LedgerStore = gw.gateway.tenancy!.state.ledger;
    const append = ledger.append.bind(ledger);
    ledger.append = () =>
      Promise.reject(
        Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'SQLITE_FULL' }),
      );
    try {
      for (let i = 0; i < 3; i++) await chat();
      // The first call tries the store (and fails), the second comes inside the retry backoff.
      for (let i = 0; i < 2; i++) {
        const r = await fetch(`${gw.url}/admin/usage?tenant=acme-corp`, { headers: ADMIN });
        const body = (await r.json()) as ErrorBody;
        assert.equal(r.status, 503, JSON.stringify(body));
        assert.equal(body.error.code, 'state_unavailable');
        assert.match(
          body.error.message,
          /3 usage records are not written to the ledger store \(sqlite\) yet/,
        );
        assert.match(body.error.message, /SQLITE_FULL/);
        assert.ok(Number(r.headers.get('retry-after')) >= 1, `retry-after: ${r.headers.get('retry-after')}`);
      }
    } finally {
      ledger.append = append;
    }
    // The store is back: the next call writes the buffered records at once, backoff or not.
    const r = await fetch(`${gw.url}/admin/usage?tenant=acme-corp&group_by=month`, { headers: ADMIN });
    const body = (await r.json()) as { data: Array<{ requests: number }> };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.deepEqual(
      body.data.map((row) => row.requests),
      [3],
    );
  });

  it('a ledger store that cannot be read is a 503, not a 500', async () => {
    const ledger: LedgerStore = gw.gateway.tenancy!.state.ledger;
    const query = ledger.query.bind(ledger);
    ledger.query = () =>
      Promise.reject(Object.assign(new Error('SQLITE_IOERR: disk I/O error'), { code: 'SQLITE_IOERR' }));
    try {
      const r = await fetch(`${gw.url}/admin/usage`, { headers: ADMIN });
      const body = (await r.json()) as ErrorBody;
      assert.equal(r.status, 503, JSON.stringify(body));
      assert.equal(body.error.code, 'state_unavailable');
      assert.match(body.error.message, /ledger store \(sqlite\) could not be read/);
      assert.equal(r.headers.get('retry-after'), '1');
    } finally {
      ledger.query = query;
    }
    // Invalid input stays a 400.
    const bad = await fetch(`${gw.url}/admin/usage?tenant=a%00b`, { headers: ADMIN });
    assert.equal(bad.status, 400);
  });
});
