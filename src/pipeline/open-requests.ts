/**
 * Tenant requests begun (authenticated) and not yet finished. Shutdown waits for them before it
 * closes the ledger writer: a stream cut by the drain deadline finishes a moment after its
 * connection is closed, and its (partial) record must still reach the journal and the ledger.
 */
export class OpenRequests {
  #n = 0;
  #idle: Array<() => void> = [];

  get size(): number {
    return this.#n;
  }

  add(): void {
    this.#n++;
  }

  done(): void {
    if (--this.#n > 0 || this.#idle.length === 0) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  /** Resolves true once none is open, false after `ms` with some still open. */
  idle(ms: number): Promise<boolean> {
    if (this.#n <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idle.push(wake);
    });
  }
}
