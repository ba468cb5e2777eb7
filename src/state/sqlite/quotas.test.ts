/**
 * The embedded quota store's file: decisions in memory, settled usage and markers written behind
 * them every 20 ms (the shared behaviour is in test/conformance/state.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqlite, SQLITE_FILE, type SqliteDb } from './db.js';
import { SqliteQuotaStore } from './quotas.js';

const scopes = [
  { name: 'tenant', limits: { day: { tokens: 1000 } } },
  { name: 'key:k1', limits: { month: { requests: 50 } } },
];

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-quota-file-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function fileUsage(db: SqliteDb, scope: string): Array<Record<string, number | string>> {
  return db
    .prepare(
      'SELECT window_id, used_tokens, used_requests, reserved_tokens, reserved_requests FROM quota_usage WHERE tenant = ? AND scope = ? ORDER BY window_id',
    )
    .all('acme', scope) as Array<Record<string, number | string>>;
}

describe('SQLite quota store: memory decides, the file follows', () => {
  it(
    'a commit resolves once its usage and marker are in the file; holds are never written',
    withDir(async (dir) => {
      const db = openSqlite(dir);
      const s = new SqliteQuotaStore(db);
      const a = await s.reserve({ tenant: 'acme', scopes, tokens: 300 });
      const b = await s.reserve({ tenant: 'acme', scopes, tokens: 200 });
      assert.ok(a.ok && b.ok);
      assert.deepEqual(fileUsage(db, 'tenant'), [], 'holds live in memory only');
      assert.equal((await s.usage('acme', 'tenant', 'day')).reservedTokens, 500);
      const pending = [s.commit(a.reservation, { tokens: 120 }), s.commit(b.reservation, { tokens: 80 })];
      // Counted at once in memory, before the file has it.
      assert.equal((await s.usage('acme', 'tenant', 'day')).usedTokens, 200);
      await Promise.all(pending);
      const rows = fileUsage(db, 'tenant');
      assert.equal(rows.length, 2, 'day and month rows');
      for (const r of rows)
        assert.deepEqual([r.used_tokens, r.used_requests, r.reserved_tokens], [200, 2, 0]);
      const writes = db.prepare('SELECT ids FROM quota_settled').pluck().all() as string[];
      assert.deepEqual(
        writes,
        [`${a.reservation.id},${b.reservation.id}`],
        'one write for the turn, both ids',
      );
      db.close();
    }),
  );

  it(
    'a new process continues from the file, and a replayed commit counts once',
    withDir(async (dir) => {
      const db1 = openSqlite(dir);
      const s1 = new SqliteQuotaStore(db1);
      const a = await s1.reserve({ tenant: 'acme', scopes, tokens: 400 });
      const lost = await s1.reserve({ tenant: 'acme', scopes, tokens: 400 });
      assert.ok(a.ok && lost.ok);
      await s1.commit(a.reservation, { tokens: 400 });
      // The process dies: `lost` was held, never settled, and its commit never written.
      db1.close();

      const db2 = openSqlite(dir);
      const s2 = new SqliteQuotaStore(db2);
      const u = await s2.usage('acme', 'tenant', 'day');
      assert.deepEqual([u.usedTokens, u.usedRequests, u.reservedTokens], [400, 1, 0]);
      // The journal replays a's commit (written, not confirmed) and lost's (never written).
      await s2.commit(a.reservation, { tokens: 400 });
      await s2.commit(lost.reservation, { tokens: 100 });
      await s2.commit(lost.reservation, { tokens: 100 });
      assert.equal((await s2.usage('acme', 'tenant', 'day')).usedTokens, 500);
      const refused = await s2.reserve({ tenant: 'acme', scopes, tokens: 600, minTokens: 501 });
      assert.ok(!refused.ok);
      assert.deepEqual([refused.used, refused.held], [500, 0]);
      db2.close();
      const db3 = openSqlite(dir);
      assert.equal(fileUsage(db3, 'tenant')[0]?.used_tokens, 500);
      db3.close();
    }),
  );

  it(
    'a released hold is marked in the file: a later commit counts nothing, in this process or the next',
    withDir(async (dir) => {
      const db1 = openSqlite(dir);
      const s1 = new SqliteQuotaStore(db1);
      const r = await s1.reserve({ tenant: 'acme', scopes, tokens: 300 });
      assert.ok(r.ok);
      await s1.release(r.reservation);
      await s1.commit(r.reservation, { tokens: 300 });
      assert.deepEqual(fileUsage(db1, 'tenant'), []);
      const u1 = await s1.usage('acme', 'tenant', 'day');
      assert.deepEqual([u1.usedTokens, u1.reservedTokens], [0, 0]);
      s1.flush(); // as the factory does before it closes the file
      db1.close();
      const db2 = openSqlite(dir);
      const s2 = new SqliteQuotaStore(db2);
      await s2.commit(r.reservation, { tokens: 300 });
      assert.equal((await s2.usage('acme', 'tenant', 'day')).usedTokens, 0);
      db2.close();
    }),
  );

  it(
    'a retried commit resolves only once the first one is in the file (review, 2026-12-07)',
    withDir(async (dir) => {
      const db = openSqlite(dir);
      db.pragma('busy_timeout = 0');
      const s = new SqliteQuotaStore(db);
      const r = await s.reserve({ tenant: 'acme', scopes, tokens: 10 });
      assert.ok(r.ok);
      // Another connection holds the file (a backup, the sqlite3 shell): every write fails.
      const other = new Database(join(dir, SQLITE_FILE));
      other.exec('BEGIN EXCLUSIVE');
      let first = false;
      let second = false;
      void s.commit(r.reservation, { tokens: 7, requests: 1 }).then(() => (first = true));
      await new Promise((res) => setTimeout(res, 60));
      // A retry of the same commit (QuotaCommits after an error): before, it resolved at once
      // because the id was queued — reported landed while the usage was not in the file.
      void s.commit(r.reservation, { tokens: 7, requests: 1 }).then(() => (second = true));
      await new Promise((res) => setTimeout(res, 60));
      assert.deepEqual([first, second], [false, false]);
      other.exec('ROLLBACK');
      other.close();
      for (let i = 0; i < 200 && !(first && second); i++) await new Promise((res) => setTimeout(res, 10));
      assert.deepEqual([first, second], [true, true]);
      assert.equal(fileUsage(db, 'tenant')[0]?.used_tokens, 7, 'counted once');
      db.close();
    }),
  );

  it(
    'holds an earlier version kept in the file are released when the store opens',
    withDir(async (dir) => {
      const db = openSqlite(dir);
      // What a version that wrote holds left behind when killed: a held row and its counters.
      db.prepare(
        "INSERT INTO quota_usage (tenant, scope, window_id, used_tokens, used_requests, reserved_tokens, reserved_requests) VALUES ('acme', 'tenant', '2026-12-06', 100, 1, 700, 1)",
      ).run();
      db.prepare(
        `INSERT INTO quota_reservations (id, tenant, scopes, day, month, tokens, requests, expires_at, owner, state)
         VALUES ('old', 'acme', '["tenant"]', '2026-12-06', '2026-12', 700, 1, ?, 'gone', 'held')`,
      ).run(Date.UTC(2026, 11, 6, 12));
      const s = new SqliteQuotaStore(db, { clock: () => Date.UTC(2026, 11, 6, 10) });
      assert.deepEqual(fileUsage(db, 'tenant'), [
        {
          window_id: '2026-12-06',
          used_tokens: 100,
          used_requests: 1,
          reserved_tokens: 0,
          reserved_requests: 0,
        },
      ]);
      const u = await s.usage('acme', 'tenant', 'day');
      assert.deepEqual([u.usedTokens, u.reservedTokens], [100, 0]);
      // Its late settlement (replayed from the journal) still counts, once.
      const old = {
        id: 'old',
        tenant: 'acme',
        scopes: ['tenant'],
        windows: { day: '2026-12-06', month: '2026-12' },
        tokens: 700,
        requests: 1,
        owner: 'gone',
        expiresAt: Date.UTC(2026, 11, 6, 12),
      };
      await s.commit(old, { tokens: 50 });
      await s.commit(old, { tokens: 50 });
      assert.equal((await s.usage('acme', 'tenant', 'day')).usedTokens, 150);
      db.close();
    }),
  );

  it(
    'a failed write keeps its commits waiting and is tried again on its own; they resolve once written',
    withDir(async (dir) => {
      const db = openSqlite(dir);
      const s = new SqliteQuotaStore(db);
      const a = await s.reserve({ tenant: 'acme', scopes, tokens: 100 });
      assert.ok(a.ok);
      // Another connection holds the write lock past the busy timeout.
      db.pragma('busy_timeout = 0');
      const other = openSqlite(dir);
      other.prepare('BEGIN IMMEDIATE').run();
      let done = false;
      const commit = s.commit(a.reservation, { tokens: 30 }).then(() => (done = true));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(done, false, 'not written, so not resolved (the journal keeps the record)');
      assert.equal((await s.usage('acme', 'tenant', 'day')).usedTokens, 30, 'memory counts it already');
      other.prepare('COMMIT').run();
      other.close();
      // No other settlement comes: the retry writes it. (Its timer does not hold the process open,
      // as a gateway's server does: this test holds it.)
      const alive = setInterval(() => undefined, 100);
      await commit;
      clearInterval(alive);
      assert.deepEqual(
        fileUsage(db, 'tenant').map((r) => r.used_tokens),
        [30, 30],
      );
      db.close();
    }),
  );

  it(
    'a write is found by a replay even when the clock stepped back past its reservation',
    withDir(async (dir) => {
      let now = Date.UTC(2026, 11, 6, 12);
      const clock = (): number => now;
      const db1 = openSqlite(dir);
      const s1 = new SqliteQuotaStore(db1, { clock });
      const r = await s1.reserve({ tenant: 'acme', scopes, tokens: 100 });
      assert.ok(r.ok);
      now -= 3_600_000; // an hour back before the write
      await s1.commit(r.reservation, { tokens: 40 });
      db1.close();
      const db2 = openSqlite(dir);
      const s2 = new SqliteQuotaStore(db2, { clock });
      await s2.commit(r.reservation, { tokens: 40 });
      const u = await s2.usage('acme', 'tenant', 'day', Date.UTC(2026, 11, 6, 12));
      assert.equal(u.usedTokens, 40, 'counted once');
      db2.close();
    }),
  );

  it(
    'ids are matched whole: an id that is part of another is not taken for it',
    withDir(async (dir) => {
      const db = openSqlite(dir);
      const s = new SqliteQuotaStore(db);
      const base = {
        tenant: 'acme',
        scopes: ['tenant'],
        windows: { day: '2026-12-06', month: '2026-12' },
        tokens: 10,
        requests: 1,
        owner: '',
        expiresAt: Date.UTC(2026, 11, 6, 13),
      };
      await s.commit({ ...base, id: 'res-10' }, { tokens: 10 });
      await s.commit({ ...base, id: 'res-1' }, { tokens: 10 });
      await s.commit({ ...base, id: 'res-1' }, { tokens: 10 });
      assert.deepEqual(
        fileUsage(db, 'tenant').map((r) => r.used_tokens),
        [20, 20],
      );
      db.close();
    }),
  );
});
