/** In-process quota store (tests, and a reference for the others). */
import { EMPTY_TALLY, SETTLED_RETENTION_MS, takeReservation, type Tally } from '../quota-logic.js';
import type {
  Clock,
  QuotaReservation,
  QuotaStore,
  QuotaUsage,
  QuotaWindow,
  ReserveRequest,
  ReserveResult,
} from '../ports.js';
import { DEFAULT_RESERVATION_TTL_MS, QUOTA_WINDOWS, windowId, windowResetAt } from '../util.js';

type ResState = 'held' | 'settled' | 'expired';

export class MemoryQuotaStore implements QuotaStore {
  readonly #clock: Clock;
  readonly #tallies = new Map<string, Tally>();
  readonly #res = new Map<string, { r: QuotaReservation; state: ResState }>();
  /** Ids of held reservations: the purge walks only these. */
  readonly #held = new Set<string>();
  #ops = 0;

  constructor(opts: { clock?: Clock } = {}) {
    this.#clock = opts.clock ?? Date.now;
  }

  #k(tenant: string, scope: string, wid: string): string {
    return `${tenant}\u0000${scope}\u0000${wid}`;
  }

  #tally(tenant: string, scope: string, wid: string): Tally {
    const k = this.#k(tenant, scope, wid);
    let t = this.#tallies.get(k);
    if (!t) {
      t = { ...EMPTY_TALLY };
      this.#tallies.set(k, t);
    }
    return t;
  }

  #apply(r: QuotaReservation, f: (t: Tally) => void): void {
    for (const s of r.scopes) for (const w of QUOTA_WINDOWS) f(this.#tally(r.tenant, s, r.windows[w]));
  }

  #unhold(r: QuotaReservation): void {
    this.#apply(r, (t) => {
      t.reservedTokens -= r.tokens;
      t.reservedRequests -= r.requests;
    });
  }

  #purge(now: number): void {
    for (const id of this.#held) {
      const e = this.#res.get(id);
      if (!e || e.state !== 'held') {
        this.#held.delete(id);
      } else if (e.r.expiresAt <= now) {
        this.#unhold(e.r);
        e.state = 'expired';
        this.#held.delete(id);
      }
    }
    if (++this.#ops % 1000 === 0) {
      for (const [id, e] of this.#res) {
        if (e.state !== 'held' && e.r.expiresAt + SETTLED_RETENTION_MS <= now) this.#res.delete(id);
      }
    }
  }

  async reserve(req: ReserveRequest): Promise<ReserveResult> {
    const now = req.now ?? this.#clock();
    this.#purge(now);
    const taken = takeReservation(req, now, (tenant, scope, wid) => this.#tally(tenant, scope, wid));
    if (!taken.ok) return taken;
    const r = taken.reservation;
    const windows = r.windows;
    this.#apply(r, (t) => {
      t.reservedTokens += r.tokens;
      t.reservedRequests += r.requests;
    });
    this.#res.set(r.id, { r, state: 'held' });
    this.#held.add(r.id);
    return { ok: true, reservation: { ...r, scopes: [...r.scopes], windows: { ...windows } } };
  }

  async commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<void> {
    this.#purge(this.#clock());
    const e = this.#res.get(res.id);
    if (e?.state === 'settled') return;
    if (e?.state === 'held') this.#unhold(e.r);
    const requests = actual.requests ?? res.requests;
    this.#apply(res, (t) => {
      t.usedTokens += Math.max(0, Math.round(actual.tokens));
      t.usedRequests += requests;
    });
    this.#res.set(res.id, { r: e?.r ?? res, state: 'settled' });
  }

  async release(res: QuotaReservation): Promise<void> {
    this.#purge(this.#clock());
    const e = this.#res.get(res.id);
    if (e?.state !== 'held') return;
    this.#unhold(e.r);
    e.state = 'settled';
  }

  async renew(
    reservations: readonly QuotaReservation[],
    ttlMs = DEFAULT_RESERVATION_TTL_MS,
  ): Promise<number> {
    const now = this.#clock();
    this.#purge(now);
    let n = 0;
    for (const res of reservations) {
      const e = this.#res.get(res.id);
      if (e?.state !== 'held') continue;
      e.r.expiresAt = now + ttlMs;
      n++;
    }
    return n;
  }

  async releaseOthers(liveOwner: string): Promise<number> {
    this.#purge(this.#clock());
    let n = 0;
    for (const id of this.#held) {
      const e = this.#res.get(id);
      if (e?.state !== 'held' || e.r.owner === liveOwner) continue;
      this.#unhold(e.r);
      // Abandoned, not settled: a late commit would still record its usage.
      e.state = 'expired';
      this.#held.delete(id);
      n++;
    }
    return n;
  }

  async usage(tenant: string, scope: string, window: QuotaWindow, now?: number): Promise<QuotaUsage> {
    const t = now ?? this.#clock();
    this.#purge(t);
    const wid = windowId(window, t);
    const tally = this.#tallies.get(this.#k(tenant, scope, wid)) ?? EMPTY_TALLY;
    return { window, windowId: wid, ...tally, resetAt: windowResetAt(window, t) };
  }
}
