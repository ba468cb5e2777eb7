/**
 * SQLite quota store (embedded family): usage and reservations persist under the data directory,
 * so a restart keeps the day/month totals. Each operation is one IMMEDIATE transaction.
 *
 * Operations on the request path are batched per turn of the event loop: `reserve()` and `commit()`
 * queue their work and resolve once it is in the database; a `setImmediate` writes everything
 * queued in this turn in one IMMEDIATE transaction — the commits first (in a savepoint), then the
 * reservations in call order, each planned on what the previous ones left, exactly as one
 * transaction each would. Every other operation (`usage`, `release`, `renew`, `releaseOthers`)
 * flushes the queue first, and the factory flushes before closing the database. If a batch fails,
 * each operation is retried in its own transaction, so a failing one rejects alone.
 * Guarantees are unchanged: a reservation is in SQLite before reserve() resolves (so before the
 * request goes upstream, and a restart releases it), and a commit not yet flushed when the process
 * dies leaves its reservation held in SQLite (released at restart) while the ledger journal, written
 * before the response's last byte, replays the commit (its confirmation is written only after
 * commit() resolved).
 */
import { SETTLED_RETENTION_MS, takeReservation, type Tally } from '../quota-logic.js';
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
import type { Statement } from 'better-sqlite3';
import type { SqliteDb } from './db.js';

const CLEANUP_EVERY = 1000;

interface TallyRow {
  used_tokens: number;
  used_requests: number;
  reserved_tokens: number;
  reserved_requests: number;
}

interface PendingCommit {
  res: QuotaReservation;
  tokens: number;
  requests: number;
  now: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface HoldRow {
  state: string;
  tokens: number;
  requests: number;
}

interface ResRow {
  id: string;
  tenant: string;
  scopes: string;
  day: string;
  month: string;
  tokens: number;
  requests: number;
  state: string;
}

interface PendingReserve {
  req: ReserveRequest;
  now: number;
  resolve: (r: ReserveResult) => void;
  reject: (e: unknown) => void;
}

interface Reserved {
  results: ReserveResult[];
  /** Whether the queued commits passed to the transaction were written with it. */
  applied: boolean;
}

export class SqliteQuotaStore implements QuotaStore {
  readonly #db: SqliteDb;
  readonly #clock: Clock;

  readonly #stmts = new Map<string, Statement<unknown[]>>();
  #ops = 0;
  /** Commits waiting for the next reserve() or the setImmediate flush, in call order. */
  #pending: PendingCommit[] = [];
  #flushScheduled = false;
  /** Transaction functions made once (better-sqlite3 builds four wrappers per db.transaction()). */
  readonly #applyTx: (batch: readonly PendingCommit[], now: number) => void;
  /** Reservations waiting for the setImmediate flush, in call order. */
  #reserves: PendingReserve[] = [];
  readonly #reserveTx: (reserves: readonly PendingReserve[], batch: readonly PendingCommit[]) => Reserved;

  constructor(db: SqliteDb, opts: { clock?: Clock } = {}) {
    this.#db = db;
    this.#clock = opts.clock ?? Date.now;
    const apply = db.transaction((batch: readonly PendingCommit[], now: number): void => {
      this.#purge(now);
      for (const p of batch) this.#commitOne(p);
    });
    this.#applyTx = (batch, now) => apply.immediate(batch, now);
    const reserve = db.transaction(
      (reserves: readonly PendingReserve[], batch: readonly PendingCommit[]): Reserved => {
        const now = this.#clock();
        // Settle the queued commits first, in a savepoint: a failure there rolls back only them
        // (they are retried one by one by the flush) and never fails this reservation.
        let applied = false;
        if (batch.length > 0) {
          try {
            apply(batch, now);
            applied = true;
          } catch {
            applied = false;
          }
        }
        // In call order, each planned on what the previous ones left (as one transaction each would).
        const results = reserves.map((r) => {
          this.#purge(r.now);
          return this.#reserveIn(r.req, r.now);
        });
        return { results, applied };
      },
    );
    this.#reserveTx = (reserves, batch) => reserve.immediate(reserves, batch);
  }

  /** Prepared once, reused (this runs on every request). */
  #st(sql: string): Statement<unknown[]> {
    let st = this.#stmts.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#stmts.set(sql, st);
    }
    return st;
  }

  #tally(tenant: string, scope: string, wid: string): Tally {
    const r = this.#st(
      'SELECT used_tokens, used_requests, reserved_tokens, reserved_requests FROM quota_usage WHERE tenant = ? AND scope = ? AND window_id = ?',
    ).get(tenant, scope, wid) as TallyRow | undefined;
    return {
      usedTokens: r?.used_tokens ?? 0,
      usedRequests: r?.used_requests ?? 0,
      reservedTokens: r?.reserved_tokens ?? 0,
      reservedRequests: r?.reserved_requests ?? 0,
    };
  }

  /** Add to the counters of every (scope, window) of a reservation. */
  #add(
    tenant: string,
    scopes: string[],
    windows: { day: string; month: string },
    d: { ut: number; ur: number; rt: number; rr: number },
  ): void {
    const st = this.#st(
      `INSERT INTO quota_usage (tenant, scope, window_id, used_tokens, used_requests, reserved_tokens, reserved_requests)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, scope, window_id) DO UPDATE SET
         used_tokens = used_tokens + excluded.used_tokens,
         used_requests = used_requests + excluded.used_requests,
         reserved_tokens = reserved_tokens + excluded.reserved_tokens,
         reserved_requests = reserved_requests + excluded.reserved_requests`,
    );
    for (const s of scopes)
      for (const w of QUOTA_WINDOWS) st.run(tenant, s, windows[w], d.ut, d.ur, d.rt, d.rr);
  }

  #unhold(r: ResRow): void {
    this.#add(
      r.tenant,
      JSON.parse(r.scopes) as string[],
      { day: r.day, month: r.month },
      {
        ut: 0,
        ur: 0,
        rt: -r.tokens,
        rr: -r.requests,
      },
    );
  }

  #purge(now: number): void {
    const expired = this.#st("SELECT * FROM quota_reservations WHERE state = 'held' AND expires_at <= ?").all(
      now,
    ) as ResRow[];
    for (const r of expired) {
      this.#unhold(r);
      this.#st("UPDATE quota_reservations SET state = 'expired' WHERE id = ?").run(r.id);
    }
    // Forget settled/expired markers now and then, not on every call.
    if (++this.#ops % CLEANUP_EVERY === 0) {
      this.#st("DELETE FROM quota_reservations WHERE state != 'held' AND expires_at <= ?").run(
        now - SETTLED_RETENTION_MS,
      );
    }
  }

  #reserveIn(req: ReserveRequest, now: number): ReserveResult {
    const taken = takeReservation(req, now, (tenant, scope, wid) => this.#tally(tenant, scope, wid));
    if (!taken.ok) return taken;
    const r = taken.reservation;
    const windows = r.windows;
    this.#add(r.tenant, r.scopes, windows, { ut: 0, ur: 0, rt: r.tokens, rr: r.requests });
    this.#st(
      "INSERT INTO quota_reservations (id, tenant, scopes, day, month, tokens, requests, expires_at, owner, state) VALUES (?,?,?,?,?,?,?,?,?,'held')",
    ).run(
      r.id,
      r.tenant,
      JSON.stringify(r.scopes),
      windows.day,
      windows.month,
      r.tokens,
      r.requests,
      r.expiresAt,
      r.owner,
    );
    return { ok: true, reservation: r };
  }

  /**
   * Queued, and written with every reservation and commit queued in this turn of the event loop in
   * one IMMEDIATE transaction (see flush()); resolves once the reservation is in the database.
   */
  reserve(req: ReserveRequest): Promise<ReserveResult> {
    return new Promise<ReserveResult>((resolve, reject) => {
      this.#reserves.push({ req, now: req.now ?? this.#clock(), resolve, reject });
      this.#schedule();
    });
  }

  /** One settlement, inside a transaction: idempotent per reservation id. */
  #commitOne(p: PendingCommit): void {
    const res = p.res;
    const row = this.#st('SELECT state, tokens, requests FROM quota_reservations WHERE id = ?').get(
      res.id,
    ) as HoldRow | undefined;
    if (row?.state === 'settled') return;
    // The row was written from this reservation: its scopes and windows are res's.
    if (row?.state === 'held')
      this.#add(res.tenant, res.scopes, res.windows, { ut: 0, ur: 0, rt: -row.tokens, rr: -row.requests });
    this.#add(res.tenant, res.scopes, res.windows, { ut: p.tokens, ur: p.requests, rt: 0, rr: 0 });
    this.#st(
      `INSERT INTO quota_reservations (id, tenant, scopes, day, month, tokens, requests, expires_at, state)
       VALUES (?,?,?,?,?,?,?,?,'settled') ON CONFLICT (id) DO UPDATE SET state = 'settled'`,
    ).run(
      res.id,
      res.tenant,
      JSON.stringify(res.scopes),
      res.windows.day,
      res.windows.month,
      res.tokens,
      res.requests,
      Math.max(res.expiresAt, p.now),
    );
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /**
   * Write every queued commit and reservation now, in one transaction (commits first, in a
   * savepoint, then the reservations in call order); if that fails, one transaction each, so a
   * failing operation rejects alone. Called before every read and before the database is closed.
   */
  flush(): void {
    const reserves = this.#reserves;
    const batch = this.#pending;
    if (reserves.length === 0) {
      this.#flushCommits(batch);
      return;
    }
    this.#reserves = [];
    this.#pending = [];
    let out: Reserved;
    try {
      out = this.#reserveTx(reserves, batch);
    } catch {
      this.#flushCommits(batch);
      for (const r of reserves) {
        let one: Reserved;
        try {
          one = this.#reserveTx([r], []);
        } catch (e) {
          r.reject(e);
          continue;
        }
        r.resolve(one.results[0] as ReserveResult);
      }
      return;
    }
    if (out.applied) for (const p of batch) p.resolve();
    else this.#flushCommits(batch);
    reserves.forEach((r, i) => r.resolve(out.results[i] as ReserveResult));
  }

  #flushCommits(batch: PendingCommit[]): void {
    if (batch.length === 0) return;
    if (batch === this.#pending) this.#pending = [];
    const now = this.#clock();
    try {
      this.#applyTx(batch, now);
    } catch {
      for (const p of batch) {
        try {
          this.#applyTx([p], now);
        } catch (e) {
          p.reject(e);
          continue;
        }
        p.resolve();
      }
      return;
    }
    for (const p of batch) p.resolve();
  }

  commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({
        res,
        tokens: Math.max(0, Math.round(actual.tokens)),
        requests: actual.requests ?? res.requests,
        now: this.#clock(),
        resolve,
        reject,
      });
      this.#schedule();
    });
  }

  async release(res: QuotaReservation): Promise<void> {
    this.flush();
    const now = this.#clock();
    this.#db
      .transaction(() => {
        this.#purge(now);
        const row = this.#st('SELECT * FROM quota_reservations WHERE id = ?').get(res.id) as
          ResRow | undefined;
        if (row?.state !== 'held') return;
        this.#unhold(row);
        this.#st("UPDATE quota_reservations SET state = 'settled' WHERE id = ?").run(res.id);
      })
      .immediate();
  }

  async renew(
    reservations: readonly QuotaReservation[],
    ttlMs = DEFAULT_RESERVATION_TTL_MS,
  ): Promise<number> {
    if (reservations.length === 0) return 0;
    this.flush();
    const now = this.#clock();
    return this.#db
      .transaction((): number => {
        this.#purge(now);
        const st = this.#st("UPDATE quota_reservations SET expires_at = ? WHERE id = ? AND state = 'held'");
        let n = 0;
        for (const r of reservations) n += st.run(now + ttlMs, r.id).changes;
        return n;
      })
      .immediate();
  }

  async releaseOthers(liveOwner: string): Promise<number> {
    this.flush();
    const now = this.#clock();
    return this.#db
      .transaction((): number => {
        this.#purge(now);
        const rows = this.#st("SELECT * FROM quota_reservations WHERE state = 'held' AND owner != ?").all(
          liveOwner,
        ) as ResRow[];
        for (const r of rows) {
          this.#unhold(r);
          // Abandoned, not settled: a late commit would still record its usage.
          this.#st("UPDATE quota_reservations SET state = 'expired' WHERE id = ?").run(r.id);
        }
        return rows.length;
      })
      .immediate();
  }

  async usage(tenant: string, scope: string, window: QuotaWindow, now?: number): Promise<QuotaUsage> {
    this.flush();
    const t = now ?? this.#clock();
    const wid = windowId(window, t);
    const tally = this.#db.transaction((): Tally => {
      this.#purge(t);
      return this.#tally(tenant, scope, wid);
    })();
    return { window, windowId: wid, ...tally, resetAt: windowResetAt(window, t) };
  }
}
