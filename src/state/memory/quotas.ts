/**
 * In-process quota store: the decisions of the memory store (tests) and of the embedded SQLite
 * store, which is this class with its `QuotaPersistence` (one gateway process owns an embedded
 * data directory, so its memory is the authority and the file is written behind it).
 */
import {
  EMPTY_TALLY,
  SETTLED_RETENTION_MS,
  takeReservation,
  type Tally,
  type TallySource,
} from '../quota-logic.js';
import type {
  Clock,
  QuotaMoved,
  QuotaReservation,
  QuotaStore,
  QuotaUsage,
  QuotaWindow,
  ReserveRequest,
  ReserveResult,
} from '../ports.js';
import { DEFAULT_RESERVATION_TTL_MS, QUOTA_WINDOWS, windowId, windowResetAt } from '../util.js';

type ResState = 'held' | 'settled' | 'expired';

/** Where an in-process store keeps what must outlive the process: settled usage, not holds. */
export interface QuotaPersistence {
  /** The usage settled in one (tenant, scope, window) by earlier processes. */
  load(tenant: string, scope: string, windowId: string): { tokens: number; requests: number };
  /**
   * Whether this reservation was settled or released already: its marker is in the file
   * (`written`), or queued for the next write (`queued`), or neither (false).
   */
  settledBefore(id: string): 'written' | 'queued' | false;
  /** Resolves once what is queued now is in the file (rejects as settle() does when it cannot be). */
  whenWritten(): Promise<void>;
  /**
   * Record a settlement: usage added to every scope and window (none for a release), and the
   * reservation's marker; resolves once both are in the file.
   */
  settle(res: QuotaReservation, tokens: number, requests: number): Promise<void>;
  /** Write what is queued now (before a tally it may touch is forgotten). */
  flush(): void;
  /**
   * Move the usage of scope `from` to scope `to` in these windows, in one transaction (queued usage
   * of `from` moves with it); returns what moved, per window in the order given.
   */
  move(
    tenant: string,
    from: string,
    to: string,
    windowIds: readonly string[],
  ): Array<{ tokens: number; requests: number }>;
  /** Add settled usage to one (tenant, scope, window), in the file at once (QuotaStore.raiseUsage). */
  add(tenant: string, scope: string, windowId: string, tokens: number, requests: number): void;
}

/** A tally, and where it counts. */
interface TallyEntry extends Tally {
  readonly wid: string;
  /** Forgotten (#forget): a holder of this entry must look its tally up again. */
  dropped?: true;
}

/**
 * A reservation this store knows. A held one keeps the tallies it counts in (every scope × window,
 * found once when it is taken), so that settling it builds no keys and does no lookups.
 */
interface ResEntry {
  r: QuotaReservation;
  state: ResState;
  tallies: TallyEntry[] | undefined;
}

function anyDropped(tallies: readonly TallyEntry[]): boolean {
  for (const t of tallies) if (t.dropped) return true;
  return false;
}

/** How many tallies before those of past windows are forgotten (a day's are still in the file). */
const TALLIES_KEPT = 10_000;

export class MemoryQuotaStore implements QuotaStore {
  readonly #clock: Clock;
  readonly #persist: QuotaPersistence | undefined;
  readonly #tallies = new Map<string, TallyEntry>();
  /**
   * Reservations by id. Without persistence settled and expired ones are remembered for
   * SETTLED_RETENTION_MS (a repeated commit counts once); with it only held ones are (the file keeps
   * the markers, so memory does not grow with the request rate).
   */
  readonly #res = new Map<string, ResEntry>();
  /** Ids of held reservations: the purge walks only these. */
  readonly #held = new Set<string>();
  /** No held reservation expires before this (a lower bound): the purge walks nothing until then. */
  #nextExpiry = Infinity;
  #ops = 0;
  /** takeReservation's view of the tallies (made once: no closure per request). */
  readonly #source: TallySource = { tally: (tenant, scope, wid) => this.#tally(tenant, scope, wid) };

  constructor(opts: { clock?: Clock; persistence?: QuotaPersistence } = {}) {
    this.#clock = opts.clock ?? Date.now;
    this.#persist = opts.persistence;
  }

  #k(tenant: string, scope: string, wid: string): string {
    return `${tenant}\u0000${scope}\u0000${wid}`;
  }

  #tally(tenant: string, scope: string, wid: string): TallyEntry {
    const k = this.#k(tenant, scope, wid);
    let t = this.#tallies.get(k);
    if (!t) {
      const before = this.#persist?.load(tenant, scope, wid);
      t = { ...EMPTY_TALLY, usedTokens: before?.tokens ?? 0, usedRequests: before?.requests ?? 0, wid };
      this.#tallies.set(k, t);
    }
    return t;
  }

  /** The tallies a reservation counts in: every scope × window. */
  #talliesOf(r: QuotaReservation): TallyEntry[] {
    const out: TallyEntry[] = [];
    for (const s of r.scopes) for (const w of QUOTA_WINDOWS) out.push(this.#tally(r.tenant, s, r.windows[w]));
    return out;
  }

  /**
   * Add to every tally the reservation counts in: `tallies` when the entry kept them (and none was
   * forgotten since), else looked up.
   */
  #bump(
    r: QuotaReservation,
    tallies: TallyEntry[] | undefined,
    heldTokens: number,
    heldRequests: number,
    usedTokens: number,
    usedRequests: number,
  ): void {
    const ts = tallies && !anyDropped(tallies) ? tallies : this.#talliesOf(r);
    for (const t of ts) {
      t.reservedTokens += heldTokens;
      t.reservedRequests += heldRequests;
      t.usedTokens += usedTokens;
      t.usedRequests += usedRequests;
    }
  }

  #unhold(e: ResEntry): void {
    this.#bump(e.r, e.tallies, -e.r.tokens, -e.r.requests, 0, 0);
  }

  #purge(now: number): void {
    if (now >= this.#nextExpiry) {
      let next = Infinity;
      for (const id of this.#held) {
        const e = this.#res.get(id);
        if (!e || e.state !== 'held') {
          this.#held.delete(id);
        } else if (e.r.expiresAt <= now) {
          this.#unhold(e);
          this.#end(id, e, 'expired');
        } else if (e.r.expiresAt < next) next = e.r.expiresAt;
      }
      this.#nextExpiry = next;
    }
    if (++this.#ops % 1000 === 0) this.#forget(this.#clock());
  }

  /** A held reservation ends: remembered as settled or expired, or (with persistence) forgotten. */
  #end(id: string, e: ResEntry, state: ResState): void {
    this.#held.delete(id);
    e.tallies = undefined;
    if (this.#persist) this.#res.delete(id);
    else e.state = state;
  }

  /** Settled and expired markers past their retention; tallies of past windows beyond TALLIES_KEPT. */
  #forget(now: number): void {
    for (const [id, e] of this.#res) {
      if (e.state !== 'held' && e.r.expiresAt + SETTLED_RETENTION_MS <= now) this.#res.delete(id);
    }
    // Without a file, a forgotten tally would be usage lost: only a persisted store forgets them.
    if (!this.#persist || this.#tallies.size <= TALLIES_KEPT) return;
    // What is forgotten must be in the file first: a later load reads it back from there.
    this.#persist.flush();
    const day = windowId('day', now);
    const month = windowId('month', now);
    for (const [k, t] of this.#tallies) {
      if (t.wid !== day && t.wid !== month && t.reservedTokens === 0 && t.reservedRequests === 0) {
        t.dropped = true;
        this.#tallies.delete(k);
      }
    }
  }

  async reserve(req: ReserveRequest): Promise<ReserveResult> {
    const now = req.now ?? this.#clock();
    this.#purge(now);
    const taken = takeReservation(req, now, this.#source);
    if (!taken.ok) return taken;
    const r = taken.reservation;
    const tallies = this.#talliesOf(r);
    this.#bump(r, tallies, r.tokens, r.requests, 0, 0);
    this.#res.set(r.id, { r, state: 'held', tallies });
    this.#held.add(r.id);
    if (r.expiresAt < this.#nextExpiry) this.#nextExpiry = r.expiresAt;
    // The caller's copy: what it does to it does not reach the store's (scopes and windows are
    // never changed by either, so they are shared).
    return { ok: true, reservation: { ...r } };
  }

  /**
   * Settle: the usage counts at once in memory; with persistence, the promise resolves once it is
   * in the file. Idempotent per reservation id, across restarts too (the file keeps the marker).
   */
  async commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<void> {
    const now = this.#clock();
    this.#purge(now);
    const e = this.#res.get(res.id);
    if (e?.state === 'settled') return;
    if (!e && this.#persist) {
      // A second commit of one already counted: done, but only once that is durable (a retried
      // commit must not be reported landed while its first try still waits for the file).
      const before = this.#persist.settledBefore(res.id);
      if (before === 'written') return;
      if (before === 'queued') return this.#persist.whenWritten();
    }
    const held = e?.state === 'held' ? e : undefined;
    if (held) this.#unhold(held);
    const tokens = Math.max(0, Math.round(actual.tokens));
    const requests = actual.requests ?? res.requests;
    this.#bump(res, held?.tallies, 0, 0, tokens, requests);
    if (!this.#persist) {
      if (e) this.#end(res.id, e, 'settled');
      else this.#res.set(res.id, { r: res, state: 'settled', tallies: undefined });
      return;
    }
    if (e) this.#end(res.id, e, 'settled');
    await this.#persist.settle(res, tokens, requests);
  }

  /** Give a hold back unused; a later commit of it counts nothing. */
  async release(res: QuotaReservation): Promise<void> {
    const now = this.#clock();
    this.#purge(now);
    const e = this.#res.get(res.id);
    if (e?.state !== 'held') return;
    this.#unhold(e);
    this.#end(res.id, e, 'settled');
    // The marker is queued at once (a later commit of it in this process counts nothing) and written
    // with the next write; nothing needs to wait for that.
    if (this.#persist) void this.#persist.settle(res, 0, 0).catch(() => undefined);
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
      // A shorter lease (or a clock step back) may end it before the purge's bound.
      if (e.r.expiresAt < this.#nextExpiry) this.#nextExpiry = e.r.expiresAt;
      n++;
    }
    return n;
  }

  async rehold(
    reservations: readonly QuotaReservation[],
    ttlMs = DEFAULT_RESERVATION_TTL_MS,
  ): Promise<string[]> {
    const now = this.#clock();
    this.#purge(now);
    const again: string[] = [];
    for (const res of reservations) {
      if (res.degraded) continue;
      let e = this.#res.get(res.id);
      if (e) {
        if (e.state !== 'expired') continue;
      } else {
        // With a file, an ended hold is forgotten at once: the file says whether it was settled.
        if (!this.#persist || this.#persist.settledBefore(res.id) !== false) continue;
        e = { r: { ...res }, state: 'expired', tallies: undefined };
        this.#res.set(res.id, e);
      }
      e.state = 'held';
      e.r.expiresAt = now + ttlMs;
      e.tallies = this.#talliesOf(e.r);
      this.#bump(e.r, e.tallies, e.r.tokens, e.r.requests, 0, 0);
      this.#held.add(res.id);
      if (e.r.expiresAt < this.#nextExpiry) this.#nextExpiry = e.r.expiresAt;
      again.push(res.id);
    }
    return again;
  }

  async releaseOthers(liveOwner: string): Promise<number> {
    this.#purge(this.#clock());
    let n = 0;
    for (const id of this.#held) {
      const e = this.#res.get(id);
      if (e?.state !== 'held' || e.r.owner === liveOwner) continue;
      this.#unhold(e);
      // Abandoned, not settled: a late commit would still record its usage.
      this.#end(id, e, 'expired');
      n++;
    }
    return n;
  }

  async moveUsage(tenant: string, from: string, to: string, now?: number): Promise<QuotaMoved[]> {
    if (from === to) return [];
    const t = now ?? this.#clock();
    const wids = QUOTA_WINDOWS.map((w) => windowId(w, t));
    // With a file, it holds what moves (and the tallies in memory follow); without, memory does.
    const fromFile = this.#persist?.move(tenant, from, to, wids);
    const out: QuotaMoved[] = [];
    QUOTA_WINDOWS.forEach((window, i) => {
      const wid = wids[i] ?? '';
      const src = this.#tallies.get(this.#k(tenant, from, wid));
      const moved = fromFile
        ? (fromFile[i] ?? { tokens: 0, requests: 0 })
        : { tokens: src?.usedTokens ?? 0, requests: src?.usedRequests ?? 0 };
      if (src) {
        src.usedTokens = 0;
        src.usedRequests = 0;
      }
      if (moved.tokens === 0 && moved.requests === 0) return;
      // A tally of `to` not in memory yet is read from the file when needed (the move is in it).
      const dst = this.#persist ? this.#tallies.get(this.#k(tenant, to, wid)) : this.#tally(tenant, to, wid);
      if (dst) {
        dst.usedTokens += moved.tokens;
        dst.usedRequests += moved.requests;
      }
      out.push({ window, windowId: wid, ...moved });
    });
    return out;
  }

  async raiseUsage(
    tenant: string,
    scope: string,
    atLeast: Record<QuotaWindow, { tokens: number; requests: number }>,
    now?: number,
  ): Promise<QuotaMoved[]> {
    const t = now ?? this.#clock();
    const out: QuotaMoved[] = [];
    for (const window of QUOTA_WINDOWS) {
      const wid = windowId(window, t);
      const tally = this.#tally(tenant, scope, wid);
      const want = atLeast[window];
      const tokens = Math.max(0, Math.round(want.tokens) - tally.usedTokens);
      const requests = Math.max(0, Math.round(want.requests) - tally.usedRequests);
      if (tokens === 0 && requests === 0) continue;
      // The file first: if it cannot be written, memory is left as it was.
      this.#persist?.add(tenant, scope, wid, tokens, requests);
      tally.usedTokens += tokens;
      tally.usedRequests += requests;
      out.push({ window, windowId: wid, tokens, requests });
    }
    return out;
  }

  async usage(tenant: string, scope: string, window: QuotaWindow, now?: number): Promise<QuotaUsage> {
    const t = now ?? this.#clock();
    this.#purge(t);
    const wid = windowId(window, t);
    const tally = this.#tally(tenant, scope, wid);
    return {
      window,
      windowId: wid,
      usedTokens: tally.usedTokens,
      usedRequests: tally.usedRequests,
      reservedTokens: tally.reservedTokens,
      reservedRequests: tally.reservedRequests,
      resetAt: windowResetAt(window, t),
    };
  }
}
