/**
 * The invalidation version in Postgres: one row, bumped on every change the key and tenant caches
 * must drop (after the change itself is committed), and polled by every replica
 * (InvalidationChannels in ../dual-bus.ts). It carries a revocation to the other replicas when the
 * replica that made it cannot reach Redis.
 */
import type { PgContext } from './db.js';
import type { VersionChannel } from '../dual-bus.js';

export class PgInvalidationVersion implements VersionChannel {
  readonly store = 'postgres' as const;
  readonly #ctx: PgContext;

  constructor(ctx: PgContext) {
    this.#ctx = ctx;
  }

  async bump(): Promise<void> {
    await this.#ctx.pool.query(`UPDATE ${this.#ctx.s}.invalidation SET version = version + 1`);
  }

  async read(): Promise<number> {
    const r = await this.#ctx.pool.query<{ version: string }>(
      `SELECT version FROM ${this.#ctx.s}.invalidation`,
    );
    return Number(r.rows[0]?.version ?? 0);
  }
}
