/**
 * Invalidation bus for the embedded family. Subscribers in this process hear publishes at once;
 * the version lives in the database, so another process on the same data directory (the CLI
 * revoking a key while the gateway runs) is noticed by the gateway's version poll.
 */
import type { Statement } from 'better-sqlite3';
import type { InvalidationBus, InvalidationEvent } from '../ports.js';
import type { SqliteDb } from './db.js';

export class SqliteInvalidationBus implements InvalidationBus {
  readonly #subs = new Set<(e: InvalidationEvent) => void>();
  readonly #bump: Statement<unknown[]>;
  readonly #read: Statement<unknown[]>;

  constructor(db: SqliteDb) {
    this.#bump = db.prepare("UPDATE state_meta SET value = value + 1 WHERE key = 'invalidation_version'");
    this.#read = db.prepare("SELECT value FROM state_meta WHERE key = 'invalidation_version'");
  }

  async publish(e: InvalidationEvent): Promise<void> {
    this.#bump.run();
    for (const fn of this.#subs) fn(e);
  }

  subscribe(fn: (e: InvalidationEvent) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  async version(): Promise<number> {
    const row = this.#read.get() as { value: number } | undefined;
    return row?.value ?? 0;
  }

  async close(): Promise<void> {
    this.#subs.clear();
  }
}
