/**
 * Single-flight: identical requests in flight at the same moment share one upstream call. The first
 * caller (the leader) records what it receives into a Flight; the others (followers) read from it,
 * chunk by chunk for streams, as it arrives.
 */
export class Flight {
  readonly chunks: unknown[] = [];
  /** The unary response body, once known. */
  body: unknown;
  done = false;
  error: unknown;
  failed = false;
  #waiters: Array<() => void> = [];

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
  /** Resolves at the next change (a chunk, the end or a failure). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  #wake(): void {
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
  /** Start a flight for `key`; the caller must call `end(key, flight)` when it settles. */
  start(key: string): Flight {
    const f = new Flight();
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
