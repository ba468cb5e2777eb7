/**
 * The admission queue: when an in-flight cap is reached, requests wait here by priority class
 * (then arrival order) until a slot frees or their queue timeout passes. One queue per replica;
 * across replicas the in-flight leases themselves are shared (Redis), and waiters also re-try on a
 * short poll so a slot freed on another replica is seen.
 */
import { PRIORITY_CLASSES, type Priority } from '../config/schema.js';

const RANK: Record<Priority, number> = Object.fromEntries(PRIORITY_CLASSES.map((p, i) => [p, i])) as Record<
  Priority,
  number
>;

export function priorityRank(p: Priority): number {
  return RANK[p];
}

/** A request may lower its tenant's class, never raise it. */
export function effectivePriority(tenantClass: Priority, asked: string | undefined): Priority {
  if (asked === undefined || !(asked in RANK)) return tenantClass;
  return RANK[asked as Priority] > RANK[tenantClass] ? (asked as Priority) : tenantClass;
}

interface Waiter {
  rank: number;
  seq: number;
  /** The in-flight caps it waits for (scope keys): a new arrival for one of them queues behind it. */
  keys: readonly string[];
  /** Try to take a slot; true when it got one (the waiter then leaves the queue). */
  attempt: () => Promise<boolean>;
  resolve: (ok: boolean) => void;
  /** Ends the wait with `attempt`'s error (a store failure): the caller maps it as outside the queue. */
  fail: (err: unknown) => void;
  busy: boolean;
  done: boolean;
}

export class AdmissionQueue {
  #waiters: Waiter[] = [];
  #seq = 0;
  #poll: NodeJS.Timeout | undefined;
  readonly #pollMs: number;
  #maxQueue: number;

  constructor(opts: { maxQueue: number; pollMs?: number }) {
    this.#maxQueue = opts.maxQueue;
    this.#pollMs = opts.pollMs ?? 25;
  }

  get depth(): number {
    return this.#waiters.length;
  }

  get maxQueue(): number {
    return this.#maxQueue;
  }

  /** admission.max_queue after a config reload: later waits follow it (who waits now stays). */
  configure(maxQueue: number): void {
    this.#maxQueue = maxQueue;
  }

  /** A wait would be refused at once: the queue holds max_queue waiters already. */
  get full(): boolean {
    return this.#waiters.length >= this.#maxQueue;
  }

  /**
   * Whether a request of `priority` for these caps must queue rather than take a free slot first:
   * someone of the same or a higher class already waits for one of them. Without it a new arrival
   * took a slot that had just freed (on another replica, or here just before the waiter's retry)
   * ahead of a queued higher-priority request (review, 2026-12-07).
   */
  waitingAhead(priority: Priority, keys: readonly string[]): boolean {
    if (this.#waiters.length === 0) return false;
    const rank = priorityRank(priority);
    for (const w of this.#waiters) {
      if (w.rank > rank) break; // sorted by rank
      if (!w.done && w.keys.some((k) => keys.includes(k))) return true;
    }
    return false;
  }

  /**
   * Wait for `attempt` to succeed, trying again whenever a slot may have freed. Resolves true when
   * admitted, false on timeout/abort/full queue; rejects with the error when an `attempt` throws
   * (the store is down: waiting out the timeout would turn that into a queue timeout).
   */
  wait(
    priority: Priority,
    timeoutMs: number,
    attempt: () => Promise<boolean>,
    signal: AbortSignal,
    keys: readonly string[] = [],
  ): Promise<boolean> {
    // A request whose client already left does not wait (its abort event has already fired).
    if (this.#waiters.length >= this.#maxQueue || timeoutMs <= 0 || signal.aborted)
      return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      const w: Waiter = {
        rank: priorityRank(priority),
        seq: this.#seq++,
        keys,
        attempt,
        resolve,
        fail: reject,
        busy: false,
        done: false,
      };
      /** Leave the queue; false when the wait had already ended. */
      const leave = (): boolean => {
        if (w.done) return false;
        w.done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        if (this.#waiters.length === 0 && this.#poll) {
          clearInterval(this.#poll);
          this.#poll = undefined;
        }
        return true;
      };
      const finish = (ok: boolean): void => {
        if (leave()) resolve(ok);
      };
      w.resolve = finish;
      w.fail = (err) => {
        if (leave()) reject(err);
      };
      const onAbort = (): void => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      // Insert sorted by (rank, seq).
      let i = this.#waiters.length;
      while (i > 0 && (this.#waiters[i - 1] as Waiter).rank > w.rank) i--;
      this.#waiters.splice(i, 0, w);
      if (!this.#poll) {
        this.#poll = setInterval(() => this.notify(), this.#pollMs);
        this.#poll.unref();
      }
    });
  }

  /** A slot may have freed: let waiters try, highest priority first. */
  notify(): void {
    void this.#drain();
  }

  async #drain(): Promise<void> {
    for (const w of [...this.#waiters]) {
      if (w.done || w.busy) continue;
      w.busy = true;
      let ok: boolean;
      try {
        ok = await w.attempt();
      } catch (err) {
        w.busy = false;
        w.fail(err);
        continue;
      }
      w.busy = false;
      if (ok) w.resolve(true);
    }
  }

  close(): void {
    for (const w of [...this.#waiters]) w.resolve(false);
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
  }
}
