/** Stored Responses API responses in process memory (memory family; nothing survives a restart). */
import type { Clock, JsonValue, ResponseStore, StoredResponse } from '../ports.js';
import { checkResponseKey, checkStoredResponse } from '../validate-input.js';

interface Row {
  /** JSON text, like the SQL stores: the caller's object is never shared. */
  json: string;
  createdAt: number;
  expiresAt: number;
}

export class MemoryResponseStore implements ResponseStore {
  readonly #byTenant = new Map<string, Map<string, Row>>();
  readonly #clock: Clock;

  constructor(opts: { clock?: Clock } = {}) {
    this.#clock = opts.clock ?? Date.now;
  }

  async put(r: StoredResponse): Promise<void> {
    checkStoredResponse(r);
    let m = this.#byTenant.get(r.tenant);
    if (!m) this.#byTenant.set(r.tenant, (m = new Map()));
    m.set(r.id, { json: JSON.stringify(r.data), createdAt: r.createdAt, expiresAt: r.expiresAt });
  }

  async get(tenant: string, id: string, now = this.#clock()): Promise<StoredResponse | null> {
    checkResponseKey(tenant, id);
    const row = this.#byTenant.get(tenant)?.get(id);
    if (!row || row.expiresAt <= now) return null;
    return {
      tenant,
      id,
      data: JSON.parse(row.json) as JsonValue,
      createdAt: row.createdAt,
      expiresAt: row.expiresAt,
    };
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    checkResponseKey(tenant, id);
    const m = this.#byTenant.get(tenant);
    const row = m?.get(id);
    // An expired one is already absent (purgeExpired removes it), as in the SQL stores.
    if (!m || !row || row.expiresAt <= this.#clock()) return false;
    m.delete(id);
    return true;
  }

  async purgeExpired(now = this.#clock()): Promise<number> {
    let n = 0;
    for (const [tenant, m] of this.#byTenant) {
      for (const [id, row] of m)
        if (row.expiresAt <= now) {
          m.delete(id);
          n++;
        }
      if (m.size === 0) this.#byTenant.delete(tenant);
    }
    return n;
  }
}
