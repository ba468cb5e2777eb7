/** Stored Responses API responses in SQLite (embedded family). The document is JSON text. */
import type { Clock, JsonValue, ResponseStore, StoredResponse } from '../ports.js';
import { checkResponseKey, checkStoredResponse } from '../validate-input.js';
import type { SqliteDb } from './db.js';

interface Row {
  data: string;
  created_at: number;
  expires_at: number;
}

export class SqliteResponseStore implements ResponseStore {
  readonly #db: SqliteDb;
  readonly #clock: Clock;

  constructor(db: SqliteDb, opts: { clock?: Clock } = {}) {
    this.#db = db;
    this.#clock = opts.clock ?? Date.now;
  }

  async put(r: StoredResponse): Promise<void> {
    checkStoredResponse(r);
    this.#db
      .prepare(
        'INSERT OR REPLACE INTO responses (tenant, id, data, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(r.tenant, r.id, JSON.stringify(r.data), r.createdAt, r.expiresAt);
  }

  async get(tenant: string, id: string, now = this.#clock()): Promise<StoredResponse | null> {
    checkResponseKey(tenant, id);
    const row = this.#db
      .prepare(
        'SELECT data, created_at, expires_at FROM responses WHERE tenant = ? AND id = ? AND expires_at > ?',
      )
      .get(tenant, id, now) as Row | undefined;
    if (!row) return null;
    return {
      tenant,
      id,
      data: JSON.parse(row.data) as JsonValue,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
    };
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    checkResponseKey(tenant, id);
    const r = this.#db
      .prepare('DELETE FROM responses WHERE tenant = ? AND id = ? AND expires_at > ?')
      .run(tenant, id, this.#clock());
    return r.changes > 0;
  }

  async purgeExpired(now = this.#clock()): Promise<number> {
    return this.#db.prepare('DELETE FROM responses WHERE expires_at <= ?').run(now).changes;
  }
}
