/**
 * SQLite quota store (embedded family): one gateway process owns an embedded data directory, so
 * its quota decisions are made in memory (the `MemoryQuotaStore` logic: reservations, leases,
 * expiry, idempotent settlement) and the file keeps what must outlive the process — the usage
 * settled per (tenant, scope, window) and the ids of the settled reservations — written behind the
 * decisions, every WRITE_EVERY_MS (20 ms) while settlements come in, in one transaction: one
 * upsert per (tenant, scope, window) touched and one `quota_settled` row holding every id settled.
 *
 * Guarantees:
 * - A restart continues from the settled totals: a tally is read from the file the first time it
 *   is needed, then kept in memory.
 * - `commit()` resolves once its usage and marker are in the file; the ledger journal confirms a
 *   quota settlement only after that, and replays an unconfirmed one at start-up. The marker makes
 *   the replay idempotent (a settlement written just before a crash is not counted twice).
 * - Holds (reservations of requests in flight) are not written: a restart ends every request the
 *   process had in flight, so their holds end with it. Holds in the file written by an earlier
 *   version (which kept them there) are released when the store opens.
 * Before this design every reservation and settlement was its own synchronous transaction (twelve
 * statements per request); now a request costs its share of one small transaction per 20 ms.
 */
import { SETTLED_RETENTION_MS } from '../quota-logic.js';
import type { Clock, QuotaReservation } from '../ports.js';
import { QUOTA_WINDOWS, timeIdMs } from '../util.js';
import { MemoryQuotaStore, type QuotaPersistence } from '../memory/quotas.js';
import type { Statement } from 'better-sqlite3';
import type { SqliteDb } from './db.js';

/** Settled ids older than their retention are deleted every this many writes. */
const CLEANUP_EVERY = 200;

/** A settlement is looked for in the writes since its reservation was made, less this (clock steps). */
const CLOCK_SLACK_MS = 60_000;

/**
 * Settlements are written at most this long after they were made, all of them in one transaction.
 * Only the journal's confirmation waits for the write (a crash before it is replayed; the replay at
 * start-up issues its commits together), so a few milliseconds more batch many more settlements per
 * transaction.
 */
const WRITE_EVERY_MS = 20;

/** After a failed write: the next try (the queued settlements stay, their commits keep waiting). */
const RETRY_MS = 1000;

/** Commits kept waiting through failed writes before the oldest are rejected. */
const MAX_WAITING = 100_000;

interface UsedRow {
  used_tokens: number;
  used_requests: number;
}

interface HeldRow {
  id: string;
  tenant: string;
  scopes: string;
  day: string;
  month: string;
  tokens: number;
  requests: number;
}

/** Usage to add to one (tenant, scope, window) row. */
interface Delta {
  tenant: string;
  scope: string;
  wid: string;
  tokens: number;
  requests: number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

class SqliteQuotaFile implements QuotaPersistence {
  readonly #db: SqliteDb;
  readonly #clock: Clock;
  readonly #selectUsed: Statement<unknown[]>;
  readonly #selectState: Statement<unknown[]>;
  readonly #selectSettled: Statement<unknown[]>;
  readonly #addUsed: Statement<unknown[]>;
  readonly #mark: Statement<unknown[]>;
  readonly #cleanup: Statement<unknown[]>;
  readonly #cleanupOld: Statement<unknown[]>;
  readonly #write: (deltas: Iterable<Delta>, ids: readonly string[]) => void;
  readonly #clearUsed: Statement<unknown[]>;
  #deltas = new Map<string, Delta>();
  /** Ids of the settlements (and releases) queued for the next write. */
  #ids: string[] = [];
  #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writes = 0;

  constructor(db: SqliteDb, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.#selectUsed = db.prepare(
      'SELECT used_tokens, used_requests FROM quota_usage WHERE tenant = ? AND scope = ? AND window_id = ?',
    );
    // Markers an earlier version wrote, one row per reservation.
    this.#selectState = db.prepare('SELECT state FROM quota_reservations WHERE id = ?');
    this.#selectSettled = db.prepare('SELECT ids FROM quota_settled WHERE at >= ?').pluck();
    this.#addUsed = db.prepare(
      `INSERT INTO quota_usage (tenant, scope, window_id, used_tokens, used_requests) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (tenant, scope, window_id) DO UPDATE SET
         used_tokens = used_tokens + excluded.used_tokens,
         used_requests = used_requests + excluded.used_requests`,
    );
    this.#clearUsed = db.prepare(
      'UPDATE quota_usage SET used_tokens = 0, used_requests = 0 WHERE tenant = ? AND scope = ? AND window_id = ?',
    );
    this.#mark = db.prepare('INSERT INTO quota_settled (at, ids) VALUES (?, ?)');
    this.#cleanup = db.prepare('DELETE FROM quota_settled WHERE at < ?');
    this.#cleanupOld = db.prepare("DELETE FROM quota_reservations WHERE state != 'held' AND expires_at <= ?");
    const write = db.transaction((deltas: Iterable<Delta>, ids: readonly string[]): void => {
      const now = this.#clock();
      for (const d of deltas) this.#addUsed.run(d.tenant, d.scope, d.wid, d.tokens, d.requests);
      // Never before any of its reservations was made (a clock step back, a caller's `now` ahead):
      // the replay looks for an id only in the writes since its reservation.
      let at = now;
      for (const id of ids) {
        const made = timeIdMs(id);
        if (made !== undefined && made > at) at = made;
      }
      this.#mark.run(at, ids.join(','));
      if (++this.#writes % CLEANUP_EVERY === 0) {
        this.#cleanup.run(now - SETTLED_RETENTION_MS);
        this.#cleanupOld.run(now - SETTLED_RETENTION_MS);
      }
    });
    this.#write = (deltas, ids) => write.immediate(deltas, ids);
    this.#releaseHeld();
  }

  /** Holds kept in the file by an earlier version: their processes are gone, so are their requests. */
  #releaseHeld(): void {
    const rows = this.#db
      .prepare(
        "SELECT id, tenant, scopes, day, month, tokens, requests FROM quota_reservations WHERE state = 'held'",
      )
      .all() as HeldRow[];
    if (rows.length === 0) return;
    const unhold = this.#db.prepare(
      `UPDATE quota_usage SET reserved_tokens = MAX(0, reserved_tokens - ?), reserved_requests = MAX(0, reserved_requests - ?)
       WHERE tenant = ? AND scope = ? AND window_id = ?`,
    );
    const expire = this.#db.prepare("UPDATE quota_reservations SET state = 'expired' WHERE id = ?");
    this.#db
      .transaction(() => {
        for (const r of rows) {
          for (const s of JSON.parse(r.scopes) as string[])
            for (const wid of [r.day, r.month]) unhold.run(r.tokens, r.requests, r.tenant, s, wid);
          expire.run(r.id);
        }
      })
      .immediate();
  }

  load(tenant: string, scope: string, windowId: string): { tokens: number; requests: number } {
    const k = `${tenant}\u0000${scope}\u0000${windowId}`;
    const queued = this.#deltas.get(k);
    const row = this.#selectUsed.get(tenant, scope, windowId) as UsedRow | undefined;
    return {
      tokens: (row?.used_tokens ?? 0) + (queued?.tokens ?? 0),
      requests: (row?.used_requests ?? 0) + (queued?.requests ?? 0),
    };
  }

  settledBefore(id: string): 'written' | 'queued' | false {
    if (this.#ids.includes(id)) return 'queued';
    if ((this.#selectState.get(id) as { state: string } | undefined)?.state === 'settled') return 'written';
    // Only the writes since the reservation was made can hold it (a replay after a crash: a few);
    // an id an earlier version made has no time in it: every write kept is looked at.
    const made = timeIdMs(id);
    const since = made === undefined ? 0 : made - CLOCK_SLACK_MS;
    // Whole ids only (`,a,b,` contains `,b,`), whatever their length.
    const needle = `,${id},`;
    for (const ids of this.#selectSettled.all(since) as string[])
      if (`,${ids},`.includes(needle)) return 'written';
    return false;
  }

  move(
    tenant: string,
    from: string,
    to: string,
    windowIds: readonly string[],
  ): Array<{ tokens: number; requests: number }> {
    const moveAll = this.#db.transaction(() =>
      windowIds.map((wid) => {
        const row = this.#selectUsed.get(tenant, from, wid) as UsedRow | undefined;
        const tokens = row?.used_tokens ?? 0;
        const requests = row?.used_requests ?? 0;
        if (tokens !== 0 || requests !== 0) {
          this.#addUsed.run(tenant, to, wid, tokens, requests);
          this.#clearUsed.run(tenant, from, wid);
        }
        return { tokens, requests };
      }),
    );
    const moved = moveAll.immediate();
    // Usage of `from` queued for the next write goes there under `to`.
    windowIds.forEach((wid, i) => {
      const fromKey = `${tenant}\u0000${from}\u0000${wid}`;
      const queued = this.#deltas.get(fromKey);
      if (!queued) return;
      this.#deltas.delete(fromKey);
      const toKey = `${tenant}\u0000${to}\u0000${wid}`;
      const d = this.#deltas.get(toKey);
      if (d) {
        d.tokens += queued.tokens;
        d.requests += queued.requests;
      } else this.#deltas.set(toKey, { ...queued, scope: to });
      const m = moved[i];
      if (m) {
        m.tokens += queued.tokens;
        m.requests += queued.requests;
      }
    });
    return moved;
  }

  add(tenant: string, scope: string, windowId: string, tokens: number, requests: number): void {
    this.#addUsed.run(tenant, scope, windowId, tokens, requests);
  }

  whenWritten(): Promise<void> {
    if (this.#ids.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#schedule(WRITE_EVERY_MS);
    });
  }

  settle(res: QuotaReservation, tokens: number, requests: number): Promise<void> {
    if (tokens !== 0 || requests !== 0) this.#queueUsage(res, tokens, requests);
    this.#ids.push(res.id);
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#schedule(WRITE_EVERY_MS);
    });
  }

  #schedule(ms: number, unref = false): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, ms);
    if (unref) this.#timer.unref();
  }

  #queueUsage(res: QuotaReservation, tokens: number, requests: number): void {
    for (const s of res.scopes) {
      for (const w of QUOTA_WINDOWS) {
        const wid = res.windows[w];
        const k = `${res.tenant}\u0000${s}\u0000${wid}`;
        const d = this.#deltas.get(k);
        if (d) {
          d.tokens += tokens;
          d.requests += requests;
        } else this.#deltas.set(k, { tenant: res.tenant, scope: s, wid, tokens, requests });
      }
    }
  }

  /**
   * Write the queued settlements in one transaction. If it fails (the file locked or full), they
   * stay queued and their commits keep waiting — so the ledger journal keeps their records for a
   * replay — and the write is tried again after RETRY_MS (or with the next flush); the ids make a
   * later replay count each once. Past MAX_WAITING waiting commits, the oldest are rejected (their
   * usage stays queued and counted in memory).
   */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#ids.length === 0) return;
    const deltas = this.#deltas;
    const ids = this.#ids;
    const waiters = this.#waiters;
    this.#deltas = new Map();
    this.#ids = [];
    this.#waiters = [];
    try {
      this.#write(deltas.values(), ids);
    } catch (e) {
      for (const [k, d] of deltas) {
        const now = this.#deltas.get(k);
        if (now) {
          now.tokens += d.tokens;
          now.requests += d.requests;
        } else this.#deltas.set(k, d);
      }
      if (!this.#db.open) {
        // Closed under them (the process is stopping): the journal replays what is unwritten.
        for (const w of waiters) w.reject(e);
        return;
      }
      this.#ids = ids.concat(this.#ids);
      this.#waiters = waiters.concat(this.#waiters);
      if (this.#waiters.length > MAX_WAITING)
        for (const w of this.#waiters.splice(0, this.#waiters.length - MAX_WAITING)) w.reject(e);
      // A retry does not keep the process alive: what it would write is in the ledger journal.
      this.#schedule(RETRY_MS, true);
      return;
    }
    for (const w of waiters) w.resolve();
  }
}

export class SqliteQuotaStore extends MemoryQuotaStore {
  readonly #file: SqliteQuotaFile;

  constructor(db: SqliteDb, opts: { clock?: Clock } = {}) {
    const clock = opts.clock ?? Date.now;
    const file = new SqliteQuotaFile(db, clock);
    super({ clock, persistence: file });
    this.#file = file;
  }

  /** Write the queued settlements now (the factory calls this before it closes the database). */
  flush(): void {
    this.#file.flush();
  }
}
