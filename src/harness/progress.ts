/**
 * Progress on stderr: a live bar redrawn in place on a TTY, a plain line every few seconds otherwise
 * (so CI logs stay readable).
 */
export interface ProgressSnapshot {
  done: number;
  passed: number;
  /** Answers that arrived but failed their content check (`check_failed`): not errors. */
  checkFailed: number;
  /** Requests that got no answer (HTTP, timeout, connection, invalid response). */
  errors: number;
  inFlight: number;
  elapsedMs: number;
  /** Planned total, or null when the run is bounded by time only. */
  total: number | null;
  durationMs: number;
}

export interface ProgressSink {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

export class Progress {
  #out: ProgressSink;
  #lastDraw = -Infinity;
  #lastLine = -Infinity;
  #enabled: boolean;

  constructor(out: ProgressSink, enabled = true) {
    this.#out = out;
    this.#enabled = enabled;
  }

  #fraction(s: ProgressSnapshot): number {
    const byTime = s.durationMs > 0 ? s.elapsedMs / s.durationMs : 0;
    const byCount = s.total !== null && s.total > 0 ? s.done / s.total : 0;
    return Math.min(1, Math.max(byTime, byCount));
  }

  #text(s: ProgressSnapshot): string {
    const rate = s.elapsedMs > 0 ? (s.done / s.elapsedMs) * 1000 : 0;
    const count = s.total === null ? `${s.done}` : `${s.done}/${s.total}`;
    // The names of the run's summary line: passed, check_failed, errors (no answer).
    return `${count} passed=${s.passed} check_failed=${s.checkFailed} errors=${s.errors} in-flight=${s.inFlight} ${rate.toFixed(1)} req/s ${(s.elapsedMs / 1000).toFixed(1)}s`;
  }

  update(s: ProgressSnapshot, force = false): void {
    if (!this.#enabled) return;
    const now = s.elapsedMs;
    if (this.#out.isTTY) {
      if (!force && now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      const f = this.#fraction(s);
      const width = Math.max(10, Math.min(40, (this.#out.columns ?? 80) - 60));
      const filled = Math.round(f * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      this.#out.write(`\r\x1b[2K[${bar}] ${(f * 100).toFixed(0).padStart(3)}% ${this.#text(s)}`);
    } else {
      if (!force && now - this.#lastLine < 5000) return;
      this.#lastLine = now;
      this.#out.write(`bench: ${this.#text(s)}\n`);
    }
  }

  finish(s: ProgressSnapshot): void {
    if (!this.#enabled) return;
    this.update(s, true);
    if (this.#out.isTTY) this.#out.write('\n');
  }
}
