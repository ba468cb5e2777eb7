/**
 * Quota commits that must land. A request's settle adds its real usage to the quota store
 * (QuotaStore.commit). When that fails — Redis restarting or failing over, a SQLite file locked —
 * the usage was spent all the same: dropping it would let the tenant run past its quota by that
 * much. So a failed commit is owed and tried again, all owed commits in one pass with a backoff
 * (250 ms doubling to 10 s, jittered), until it lands: every store's commit is idempotent per
 * reservation id, so a commit whose first try did land (its reply lost) counts once.
 *
 * Retries stop after RETRY_WINDOW_MS (10 min: inside the 15 min the stores remember a settled
 * reservation, SETTLED_RETENTION_MS), when more than MAX_OWED are owed, or at shutdown. Such a
 * commit resolves false: the ledger writer then writes it to the crash journal's owed file, and the
 * next start commits it from there (docs/state.md). Nothing is lost while the process lives or after.
 */
import type { QuotaReservation, QuotaStore } from '../state/index.js';
import type { Logger } from '../telemetry/logger.js';

const BASE_MS = 250;
const MAX_MS = 10_000;
const RETRY_WINDOW_MS = 10 * 60_000;
const MAX_OWED = 100_000;
/** Commits tried at once in a pass (the store's connection pipelines them). */
const PASS_SIZE = 256;

interface Owed {
  res: QuotaReservation;
  actual: { tokens: number; requests?: number };
  since: number;
  done: (ok: boolean) => void;
}

export interface QuotaCommitsOptions {
  baseMs?: number;
  maxMs?: number;
  windowMs?: number;
  maxOwed?: number;
  clock?: () => number;
  /** Called when the number owed changes (a gauge), and when one is given up. */
  onOwed?: (owed: number) => void;
  onAbandoned?: () => void;
}

export class QuotaCommits {
  readonly #store: QuotaStore;
  readonly #logger: Logger;
  readonly #o: Required<Omit<QuotaCommitsOptions, 'onOwed' | 'onAbandoned'>> &
    Pick<QuotaCommitsOptions, 'onOwed' | 'onAbandoned'>;
  #owed: Owed[] = [];
  #timer: NodeJS.Timeout | undefined;
  #delay: number;
  #passing = false;
  #closed = false;
  /** Past maxOwed: logged once per streak, not once per commit. */
  #overCap = false;
  /** Owed commits that landed since the outage began (for the "landed" line). */
  #landed = 0;

  constructor(store: QuotaStore, logger: Logger, opts: QuotaCommitsOptions = {}) {
    this.#store = store;
    this.#logger = logger;
    this.#o = {
      baseMs: opts.baseMs ?? BASE_MS,
      maxMs: opts.maxMs ?? MAX_MS,
      windowMs: opts.windowMs ?? RETRY_WINDOW_MS,
      maxOwed: opts.maxOwed ?? MAX_OWED,
      clock: opts.clock ?? Date.now,
      onOwed: opts.onOwed,
      onAbandoned: opts.onAbandoned,
    };
    this.#delay = this.#o.baseMs;
  }

  /** How many commits wait for a retry now. */
  get owed(): number {
    return this.#owed.length;
  }

  /**
   * Commit `actual` to the reservation's windows. Resolves true once the store has it (at once, or
   * after retries), false when it was given up (see the module comment). Never rejects.
   */
  commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<boolean> {
    return this.#store.commit(res, actual).then(
      () => true,
      (err: unknown) => this.#owe(res, actual, err),
    );
  }

  #owe(res: QuotaReservation, actual: Owed['actual'], err: unknown): Promise<boolean> {
    if (this.#closed || this.#owed.length >= this.#o.maxOwed) {
      const quiet = !this.#closed && this.#overCap;
      if (!this.#closed) this.#overCap = true;
      this.#abandon(1, err, this.#closed ? 'shutting down' : 'too many owed', quiet);
      return Promise.resolve(false);
    }
    if (this.#owed.length === 0)
      this.#logger.warn(
        { err, requestId: res.id },
        'a quota commit failed; it is retried (with every later one that fails) until the store takes it',
      );
    return new Promise<boolean>((done) => {
      this.#owed.push({ res, actual, since: this.#o.clock(), done });
      this.#o.onOwed?.(this.#owed.length);
      this.#schedule();
    });
  }

  #abandon(n: number, err: unknown, why: string, quiet = false): void {
    for (let i = 0; i < n; i++) this.#o.onAbandoned?.();
    if (quiet) return;
    this.#logger.error(
      { err, commits: n, reason: why },
      'quota commits given up; their usage is replayed from the ledger journal at the next start',
    );
  }

  #schedule(): void {
    if (this.#timer || this.#passing || this.#closed || this.#owed.length === 0) return;
    // Jitter: replicas that lost the same Redis do not come back in step.
    const ms = Math.round(this.#delay * (0.75 + Math.random() * 0.5));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#pass();
    }, ms);
    // Owed commits do not keep a stopping process alive: the journal holds them.
    this.#timer.unref();
  }

  /** Retry the oldest owed commits, PASS_SIZE at a time, until one batch has a failure. */
  async #pass(): Promise<void> {
    this.#passing = true;
    let lastErr: unknown;
    try {
      while (this.#owed.length > 0 && !this.#closed) {
        const batch = this.#owed.slice(0, PASS_SIZE);
        const results = await Promise.allSettled(batch.map((o) => this.#store.commit(o.res, o.actual)));
        if (this.#closed) return;
        const now = this.#o.clock();
        const kept: Owed[] = [];
        let expired = 0;
        results.forEach((r, i) => {
          const o = batch[i] as Owed;
          if (r.status === 'fulfilled') {
            this.#landed++;
            o.done(true);
          } else if (now - o.since >= this.#o.windowMs) {
            expired++;
            lastErr = r.reason;
            o.done(false);
          } else {
            lastErr = r.reason;
            kept.push(o);
          }
        });
        if (expired > 0) this.#abandon(expired, lastErr, 'retried for the whole retry window');
        this.#owed = kept.concat(this.#owed.slice(batch.length));
        this.#o.onOwed?.(this.#owed.length);
        if (this.#owed.length < this.#o.maxOwed) this.#overCap = false;
        if (kept.length > 0) {
          this.#delay = Math.min(this.#o.maxMs, this.#delay * 2);
          return;
        }
        if (this.#owed.length === 0) {
          this.#delay = this.#o.baseMs;
          if (this.#landed > 0)
            this.#logger.info(
              { landed: this.#landed },
              'owed quota commits landed; the quota store takes commits again',
            );
          this.#landed = 0;
        }
      }
    } finally {
      this.#passing = false;
      this.#schedule();
    }
  }

  /** Stop retrying: what is owed resolves false (the journal replays it at the next start). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const owed = this.#owed;
    this.#owed = [];
    if (owed.length > 0) this.#abandon(owed.length, undefined, 'shutting down');
    for (const o of owed) o.done(false);
    this.#o.onOwed?.(0);
  }
}
