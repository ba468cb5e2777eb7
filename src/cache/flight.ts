/**
 * Single-flight: identical requests in flight at the same moment share one upstream call. The flight
 * owns that call: the first request (the leader) starts it with the flight's own `cancel`, and what
 * comes back is recorded here; every request that wants the answer — the leader included — reads it
 * as a reader, chunk by chunk for streams, as it arrives. A reader leaves on its own request's
 * cancellation (client disconnect, deadline) without waiting for the call; the call is cancelled
 * only when the last reader leaves before it settled, so a leader whose client goes away does not
 * cut its followers off.
 */
import { Cancel, type Cancellable } from '../lib/abort.js';

/** One request reading a flight; `leave()` when it stops (idempotent). */
export class FlightReader {
  #cancel: Cancellable;
  #onLeave: (reason: unknown) => void;
  #off: () => void;
  #left = false;

  constructor(cancel: Cancellable, onLeave: (reason: unknown) => void) {
    this.#cancel = cancel;
    this.#onLeave = onLeave;
    // A request that is cancelled leaves at once, wherever it is (waiting, writing, not reading yet).
    this.#off = cancel.onAbort(() => this.leave());
  }

  leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.#off();
    this.#onLeave(this.#cancel.aborted ? this.#cancel.reason : undefined);
  }
}

export class Flight {
  readonly chunks: unknown[] = [];
  /** The unary response body, once known. */
  body: unknown;
  done = false;
  error: unknown;
  failed = false;
  /** The upstream call's cancellation: aborted when the last reader leaves before the call settled. */
  readonly cancel = new Cancel();
  #waiters: Array<() => void> = [];
  #readers = 0;
  #onAbandoned: (() => void) | undefined;

  /** `onAbandoned`: run when the last reader left before the call settled (the table forgets the flight). */
  constructor(onAbandoned?: () => void) {
    this.#onAbandoned = onAbandoned;
  }

  get settled(): boolean {
    return this.done || this.failed;
  }
  /** Requests reading this flight now. */
  get readers(): number {
    return this.#readers;
  }
  /** Pending changed() calls. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** A request starts reading; it leaves when `cancel` fires or when it calls leave(). */
  join(cancel: Cancellable): FlightReader {
    this.#readers++;
    return new FlightReader(cancel, (reason) => this.#readerLeft(reason));
  }

  /** A reader left; `reason`: its request's cancellation reason, if it was cancelled. */
  #readerLeft(reason: unknown): void {
    this.#readers--;
    if (this.#readers > 0 || this.settled || this.cancel.aborted) return;
    // No one reads any more: stop the upstream call (with the last reader's reason: its client
    // left, or its deadline passed; the attempt is counted `aborted` upstream, not against the
    // backend) and take the flight out of the table, so that no later request joins a call that is
    // being cancelled.
    this.cancel.abort(reason);
    this.#onAbandoned?.();
  }

  push(chunk: unknown): void {
    this.chunks.push(chunk);
    this.#wake();
  }
  finish(body?: unknown): void {
    this.body = body;
    this.done = true;
    this.#wake();
  }
  fail(error: unknown): void {
    this.failed = true;
    this.error = error;
    this.#wake();
  }
  /**
   * Resolves at the next change (a chunk, the end or a failure). With `cancel` (the reader's own
   * request), rejects with its reason as soon as it is cancelled, and the waiter is dropped.
   */
  changed(cancel?: Cancellable): Promise<void> {
    if (cancel?.aborted) return Promise.reject(cancel.reason as Error);
    return new Promise((resolve, reject) => {
      let off: (() => void) | undefined;
      const wake = (): void => {
        off?.();
        resolve();
      };
      this.#waiters.push(wake);
      if (cancel)
        off = cancel.onAbort(() => {
          const i = this.#waiters.indexOf(wake);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(cancel.reason as Error);
        });
    });
  }
  #wake(): void {
    if (this.#waiters.length === 0) return;
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

export class FlightTable {
  #flights = new Map<string, Flight>();

  get(key: string): Flight | undefined {
    return this.#flights.get(key);
  }
  /**
   * Start a flight for `key`; the caller must call `end(key, flight)` when it settles. A flight
   * whose readers all left before it settled leaves the table by itself.
   */
  start(key: string): Flight {
    const f: Flight = new Flight(() => this.end(key, f));
    this.#flights.set(key, f);
    return f;
  }
  end(key: string, flight: Flight): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
  }
  get size(): number {
    return this.#flights.size;
  }
}
