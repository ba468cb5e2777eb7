/**
 * A stream still running when the drain deadline cuts its connection is billed for what was sent:
 * its (partial) ledger record reaches the ledger or the crash journal, never neither — the
 * gateway's close must not shut the ledger writer before the cut requests have finished.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startGatewayFromFile } from '../support/gateway.js';

const KEY = 'sk-cut-at-shutdown-0123456789';

describe('shutdown: a stream cut by the drain deadline', () => {
  it('is in the ledger (partial) or the journal after stop()', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'portico-cut-'));
    const gw = await startGatewayFromFile({
      server: { host: '127.0.0.1', port: 0 },
      logging: { level: 'silent' },
      state: { kind: 'embedded', data_dir: dataDir },
      tenants: [{ id: 'cut', api_keys: [{ value: KEY }] }],
      models: {
        default: {
          backends: [{ id: 'sim', provider: 'sim', sim: { mode: 'lorem', output_tokens: 2000, itl_ms: 5 } }],
        },
      },
    });
    let cleaned = false;
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'default',
          stream: true,
          messages: [{ role: 'user', content: 'long' }],
        }),
      });
      assert.equal(res.status, 200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let got = 0;
      while (got < 2000) got += ((await reader.read()).value ?? new Uint8Array()).length;
      const reading = (async () => {
        try {
          for (;;) if ((await reader.read()).done) return;
        } catch {
          /* cut */
        }
      })();
      await gw.stop(100); // drain deadline 100 ms: the stream is cut
      cleaned = true;
      await reading;
      const db = new Database(join(dataDir, 'portico.db'), { readonly: true });
      const rows = db.prepare('SELECT tenant, partial, tokens_out FROM ledger').all() as Array<{
        tenant: string;
        partial: number;
        tokens_out: number;
      }>;
      db.close();
      const journalDir = join(dataDir, 'journal');
      let journaled = 0;
      try {
        for (const f of readdirSync(journalDir, { recursive: true }) as string[])
          if (f.endsWith('.jsonl'))
            journaled += readFileSync(join(journalDir, f), 'utf8')
              .split('\n')
              .filter((l) => l.includes('"r"')).length;
      } catch {
        /* no journal dir */
      }
      // Before: neither (the record was made after the writer and its journal had closed).
      assert.equal(rows.length + journaled, 1, `ledger rows ${JSON.stringify(rows)}, journaled ${journaled}`);
      if (rows.length === 1) {
        assert.equal(rows[0]?.partial, 1, 'billed as a stream cut short');
        assert.ok((rows[0]?.tokens_out ?? 0) > 0, 'for the tokens it was sent');
      }
    } finally {
      if (!cleaned) await gw.stop(100);
      await gw.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
