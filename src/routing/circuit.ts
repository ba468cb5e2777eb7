/**
 * Circuit breaker per backend: `failures` consecutive failures open it for `open_ms`; then one
 * probe request is let through (half-open): success closes it, failure opens it again. A streamed
 * probe succeeds at its first chunk (pipeline/dispatch.ts), not at the end of the stream.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export class CircuitBreaker {
  state: CircuitState = 'closed';
  failures = 0;
  openedAt = 0;
  #probing = false;
  threshold: number;
  openMs: number;

  constructor(threshold = 5, openMs = 30_000) {
    this.threshold = threshold;
    this.openMs = openMs;
  }

  /** Would a request be let through now? (No side effect.) */
  allows(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') return now - this.openedAt >= this.openMs;
    return !this.#probing;
  }

  /** A request was sent: in half-open (or an expired open) it becomes the one probe. */
  acquire(now: number): void {
    if (this.state === 'open' && now - this.openedAt >= this.openMs) this.state = 'half_open';
    if (this.state === 'half_open') this.#probing = true;
  }

  onSuccess(): void {
    this.state = 'closed';
    this.failures = 0;
    this.#probing = false;
  }

  onFailure(now: number): void {
    this.failures++;
    this.#probing = false;
    if (this.state === 'half_open' || (this.state === 'closed' && this.failures >= this.threshold)) {
      this.state = 'open';
      this.openedAt = now;
    }
  }

  /** A request that ended without a verdict (client went away): free the probe slot. */
  release(): void {
    this.#probing = false;
  }

  /** 0 closed, 1 half-open, 2 open (the portico_circuit_state gauge). */
  get code(): number {
    return this.state === 'closed' ? 0 : this.state === 'half_open' ? 1 : 2;
  }
}
