/**
 * SQLite quota store (embedded family): usage and reservations persist under the data directory,
 * so a restart keeps the day/month totals. Each operation is one IMMEDIATE transaction.
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

export class SqliteQuotaStore implements QuotaStore {
  readonly #db: SqliteDb;
  readonly #clock: Clock;

  readonly #stmts = new Map<string, Statement<unknown[]>>();
  #ops = 0;

  constructor(db: SqliteDb, opts: { clock?: Clock } = {}) {
    this.#db = db;
    this.#clock = opts.clock ?? Date.now;
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

  async reserve(req: ReserveRequest): Promise<ReserveResult> {
    const now = req.now ?? this.#clock();
    const requests = req.requests ?? 1;
    const range = tokenRange(req.tokens, req.minTokens);
    const windows = { day: windowId('day', now), month: windowId('month', now) };
    return this.#db
      .transaction((): ReserveResult => {
        this.#purge(now);
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
      })
      .immediate();
  }

  async commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<void> {
    const now = this.#clock();
    this.#db
      .transaction(() => {
        this.#purge(now);
        const row = this.#st('SELECT * FROM quota_reservations WHERE id = ?').get(res.id) as
          ResRow | undefined;
        if (row?.state === 'settled') return;
        if (row?.state === 'held') this.#unhold(row);
        this.#add(res.tenant, res.scopes, res.windows, {
          ut: Math.max(0, Math.round(actual.tokens)),
          ur: actual.requests ?? res.requests,
          rt: 0,
          rr: 0,
        });
        this.#db
          .prepare(
            `INSERT INTO quota_reservations (id, tenant, scopes, day, month, tokens, requests, expires_at, state)
             VALUES (?,?,?,?,?,?,?,?,'settled') ON CONFLICT (id) DO UPDATE SET state = 'settled'`,
          )
          .run(
            res.id,
            res.tenant,
            JSON.stringify(res.scopes),
            res.windows.day,
            res.windows.month,
            res.tokens,
            res.requests,
            Math.max(res.expiresAt, now),
          );
      })
      .immediate();
  }

  async release(res: QuotaReservation): Promise<void> {
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
    const t = now ?? this.#clock();
    const wid = windowId(window, t);
    const tally = this.#db.transaction((): Tally => {
      this.#purge(t);
      return this.#tally(tenant, scope, wid);
    })();
    return { window, windowId: wid, ...tally, resetAt: windowResetAt(window, t) };
  }
}
