/**
 * Stored Responses API responses in Postgres (distributed family). The document is kept as JSON
 * *text*, not jsonb: jsonb refuses "\u0000" inside strings, and a stored response must come back
 * exactly as the client's input was.
 */
import type { Clock, JsonValue, ResponseStore, StoredResponse } from '../ports.js';
import { checkResponseKey, checkStoredResponse } from '../validate-input.js';
import { pgFailure, type PgContext } from './db.js';
import { StateUnavailableError } from '../errors.js';

/**
 * A failed query is the store being unavailable (the gateway answers 503), reported to the hooks;
 * the outcome also feeds the store's reachability (portico_state_backend_up).
 */
async function guard<T>(ctx: PgContext, op: string, fn: () => Promise<T>): Promise<T> {
  try {
    const out = await fn();
    ctx.health?.observe(true);
    return out;
  } catch (e) {
    if (pgFailure(e) === 'down') ctx.health?.observe(false);
    ctx.hooks?.onError?.({ store: 'postgres', port: 'responses', op, mode: 'fail_closed', error: e });
    throw new StateUnavailableError('postgres', `response store unavailable (${op})`, e);
  }
}

interface Row {
  data: string;
  created_at: string;
  expires_at: string;
}

export class PgResponseStore implements ResponseStore {
  readonly #ctx: PgContext;
  readonly #clock: Clock;

  constructor(ctx: PgContext, opts: { clock?: Clock } = {}) {
    this.#ctx = ctx;
    this.#clock = opts.clock ?? Date.now;
  }

  async put(r: StoredResponse): Promise<void> {
    checkStoredResponse(r);
    await guard(this.#ctx, 'put', () =>
      this.#ctx.pool.query(
        `INSERT INTO ${this.#ctx.s}.responses (tenant, id, data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant, id) DO UPDATE SET data = EXCLUDED.data, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`,
        [r.tenant, r.id, JSON.stringify(r.data), r.createdAt, r.expiresAt],
      ),
    );
  }

  async get(tenant: string, id: string, now = this.#clock()): Promise<StoredResponse | null> {
    checkResponseKey(tenant, id);
    const res = await guard(this.#ctx, 'get', () =>
      this.#ctx.pool.query<Row>(
        `SELECT data, created_at, expires_at FROM ${this.#ctx.s}.responses WHERE tenant = $1 AND id = $2 AND expires_at > $3`,
        [tenant, id, now],
      ),
    );
    const row = res.rows[0];
    if (!row) return null;
    return {
      tenant,
      id,
      data: JSON.parse(row.data) as JsonValue,
      createdAt: Number(row.created_at),
      expiresAt: Number(row.expires_at),
    };
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    checkResponseKey(tenant, id);
    const res = await guard(this.#ctx, 'delete', () =>
      this.#ctx.pool.query(
        `DELETE FROM ${this.#ctx.s}.responses WHERE tenant = $1 AND id = $2 AND expires_at > $3`,
        [tenant, id, this.#clock()],
      ),
    );
    return (res.rowCount ?? 0) > 0;
  }

  async purgeExpired(now = this.#clock()): Promise<number> {
    const res = await this.#ctx.pool.query(`DELETE FROM ${this.#ctx.s}.responses WHERE expires_at <= $1`, [
      now,
    ]);
    return res.rowCount ?? 0;
  }
}
