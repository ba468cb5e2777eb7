/**
 * SQLite quota store (embedded family): usage and reservations persist under the data directory,
 * so a restart keeps the day/month totals. Each operation is one IMMEDIATE transaction.
 *
 * Commits are batched: `commit()` queues the settlement and resolves once it is in the database,
 * which happens either inside the next `reserve()` transaction (before that reservation is planned,
 * so admission sees exactly what a synchronous commit would have left) or in one transaction for
 * every commit queued in this turn of the event loop (`setImmediate`). Every other read (`usage`,
 * `release`, `renew`, `releaseOthers`) flushes the queue first. A crash before the flush loses
 * nothing: the reservation is still held in the database (released at restart) and the ledger
 * journal, written before the response's last byte, replays the commit (its confirmation is only
 * written once this promise resolved).
 */
import { planReservation, SETTLED_RETENTION_MS, tokenRange, type Tally } from '../quota-logic.js';
import type {
  Clock,
  QuotaReservation,
  QuotaStore,
  QuotaUsage,
  QuotaWindow,
  ReserveRequest,
  ReserveResult,
} from '../ports.js';
import { DEFAULT_RESERVATION_TTL_MS, newId, QUOTA_WINDOWS, windowId, windowResetAt } from '../util.js';
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

interface Reserved {
  result: ReserveResult;
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
  readonly #reserveTx: (req: ReserveRequest, now: number, batch: readonly PendingCommit[]) => Reserved;

  constructor(db: SqliteDb, opts: { clock?: Clock } = {}) {
    this.#db = db;
    this.#clock = opts.clock ?? Date.now;
    const apply = db.transaction((batch: readonly PendingCommit[], now: number): void => {
      this.#purge(now);
      for (const p of batch) this.#commitOne(p);
    });
    this.#applyTx = (batch, now) => apply.immediate(batch, now);
    const reserve = db.transaction(
      (req: ReserveRequest, now: number, batch: readonly PendingCommit[]): Reserved => {
        this.#purge(now);
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
        return { result: this.#reserveIn(req, now), applied };
      },
    );
    this.#reserveTx = (req, now, batch) => reserve.immediate(req, now, batch);
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
    const requests = req.requests ?? 1;
    const range = tokenRange(req.tokens, req.minTokens);
    const windows = { day: windowId('day', now), month: windowId('month', now) };
    const plan = planReservation(req.scopes, range.max, range.min, requests, now, (scope, w) =>
      this.#tally(req.tenant, scope, windows[w]),
    );
    if (!plan.ok) return plan;
    const r: QuotaReservation = {
      id: newId(),
      tenant: req.tenant,
      scopes: req.scopes.map((s) => s.name),
      windows,
      tokens: plan.tokens,
      requests,
      owner: req.owner ?? '',
      expiresAt: now + (req.ttlMs ?? DEFAULT_RESERVATION_TTL_MS),
    };
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

  async reserve(req: ReserveRequest): Promise<ReserveResult> {
    const now = req.now ?? this.#clock();
    const batch = this.#pending;
    this.#pending = [];
    let out: Reserved;
    try {
      out = this.#reserveTx(req, now, batch);
    } catch (e) {
      this.#requeue(batch);
      throw e;
    }
    if (out.applied) for (const p of batch) p.resolve();
    else this.#requeue(batch);
    return out.result;
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

  #requeue(batch: PendingCommit[]): void {
    if (batch.length === 0) return;
    this.#pending = batch.concat(this.#pending);
    this.#schedule();
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
   * Write every queued commit now, in one transaction; if that fails, one transaction each, so a
   * failing commit rejects alone. Called before the database is closed.
   */
  flush(): void {
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
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
