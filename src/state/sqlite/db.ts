/** Opens the embedded SQLite database under the data directory and applies migrations. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDb = Database.Database;

export const SQLITE_FILE = 'portico.db';

/** Append-only: each entry moves the schema one user_version forward. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    company TEXT,
    industry TEXT,
    system_prompt TEXT,
    prompt_policy TEXT,
    allowed_models TEXT NOT NULL DEFAULT '[]',
    limits TEXT,
    priority TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('config','api')),
    created_at TEXT NOT NULL
  );
  CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    label TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    limits TEXT,
    created_at TEXT NOT NULL
  );
  CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
  CREATE TABLE ledger (
    id TEXT PRIMARY KEY,
    time INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    key_id TEXT,
    model TEXT NOT NULL,
    backend TEXT,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    estimated INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    cache_hit INTEGER NOT NULL,
    request_id TEXT NOT NULL
  );
  CREATE INDEX ledger_tenant_time ON ledger (tenant, time);
  CREATE INDEX ledger_time ON ledger (time);
  CREATE TABLE quota_usage (
    tenant TEXT NOT NULL,
    scope TEXT NOT NULL,
    window_id TEXT NOT NULL,
    used_tokens INTEGER NOT NULL DEFAULT 0,
    used_requests INTEGER NOT NULL DEFAULT 0,
    reserved_tokens INTEGER NOT NULL DEFAULT 0,
    reserved_requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, scope, window_id)
  );
  CREATE TABLE quota_reservations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    scopes TEXT NOT NULL,
    day TEXT NOT NULL,
    month TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('held','settled','expired'))
  );
  CREATE INDEX quota_reservations_held ON quota_reservations (expires_at) WHERE state = 'held';
  CREATE INDEX quota_reservations_exp ON quota_reservations (expires_at);
  CREATE TABLE state_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  INSERT INTO state_meta (key, value) VALUES ('invalidation_version', 0);
  `,
  // Quota reservations record the replica (process) that holds them: released at its next start.
  `
  ALTER TABLE quota_reservations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
  `,
  // Stored Responses API responses (store: true), per tenant, with an expiry.
  `
  CREATE TABLE responses (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
  );
  CREATE INDEX responses_expires ON responses (expires_at);
  `,
  // Ledger records of answers cut short (cancelled or broken-off streams), billed for what was delivered.
  `
  ALTER TABLE ledger ADD COLUMN partial INTEGER NOT NULL DEFAULT 0;
  `,
  // Settled quota reservations, one row per write of the in-memory quota store (its ids joined):
  // what makes a settlement replayed from the ledger journal count once.
  `
  CREATE TABLE quota_settled (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    ids TEXT NOT NULL
  );
  CREATE INDEX quota_settled_at ON quota_settled (at);
  `,
];

/**
 * SQLite's page cache, MiB: SQLite's own default. better-sqlite3 builds SQLite with 16 MiB, which
 * the ledger's inserts fill within minutes under load and which then stays resident (the C heap
 * does not shrink): ~16 MB of RSS for little, as the ledger is append-mostly and its hot pages are
 * the indexes' right edges (bench/pipeline-report.md, Session 15).
 */
export const DEFAULT_SQLITE_CACHE_MB = 2;

/** `dataDir` ':memory:' opens a throwaway in-memory database (tests). */
export function openSqlite(dataDir: string, cacheMb = DEFAULT_SQLITE_CACHE_MB): SqliteDb {
  let db: SqliteDb;
  if (dataDir === ':memory:') db = new Database(':memory:');
  else {
    mkdirSync(dataDir, { recursive: true });
    db = new Database(join(dataDir, SQLITE_FILE));
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: durable across process crashes; an OS crash may lose the last commits.
    db.pragma('synchronous = NORMAL');
  }
  db.pragma('busy_timeout = 5000');
  // Negative: a size in KiB rather than a page count.
  db.pragma(`cache_size = ${-Math.round(cacheMb * 1024)}`);
  migrate(db);
  return db;
}

function migrate(db: SqliteDb): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  for (let v = current; v < MIGRATIONS.length; v++) {
    const sql = MIGRATIONS[v];
    if (sql === undefined) break;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}
