/**
 * Reachability of one backing service (portico_state_backend_up{store}, /ready), from what is
 * seen rather than from one event: the outcome of real operations (observe), the connections'
 * own events (set), and a light periodic probe — so the value comes back to 1 after a blip and
 * goes to 0 during an outage even when no request touches the store (an idle pool has no
 * connection to lose).
 * A store made of several connections (Redis: commands + pub/sub) is up only while every one is.
 */
import type { BackendName, StateHooks, StateLogger } from './ports.js';

export interface BackendHealthOptions {
  hooks?: StateHooks | undefined;
  logger?: StateLogger | undefined;
  /** The connections that must all be up (default: one, 'default'). */
  sources?: readonly string[];
  /**
   * Checks the store; resolves per source (or for all sources) whether it answered, or undefined
   * for no verdict (the real operations under way will tell). Counted down past timeoutMs.
   */
  probe?: () => Promise<boolean | Partial<Record<string, boolean>> | undefined>;
  /** Probe period. Default 5000 ms; 0 turns the timer off (check() still probes). */
  intervalMs?: number;
  /** A probe not settled by then counts as down. Default 2000 ms. */
  timeoutMs?: number;
  /** Initial state of every source. Default true (the store was just opened). */
  initiallyUp?: boolean;
  clock?: () => number;
}

export class BackendHealth {
  readonly store: BackendName;
  readonly #opts: BackendHealthOptions;
  readonly #sources = new Map<string, boolean>();
  readonly #clock: () => number;
  readonly #timeoutMs: number;
  #up: boolean;
  #downSince = 0;
  #everUp: boolean;
  #probing: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: BackendName, opts: BackendHealthOptions = {}) {
    this.store = store;
    this.#opts = opts;
    this.#clock = opts.clock ?? Date.now;
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    const initial = opts.initiallyUp ?? true;
    for (const s of opts.sources ?? ['default']) this.#sources.set(s, initial);
    this.#up = initial;
    this.#everUp = initial;
    if (!initial) this.#downSince = this.#clock();
    opts.hooks?.onBackendUp?.(store, initial);
    const every = opts.intervalMs ?? 5000;
    if (opts.probe && every > 0) {
      this.#timer = setInterval(() => void this.check(), every);
      this.#timer.unref();
    }
  }

  /** Up only while every source is. */
  get up(): boolean {
    return this.#up;
  }

  /** The outcome of a real operation on the single-source store. */
  observe(ok: boolean): void {
    for (const s of this.#sources.keys()) this.set(s, ok);
  }

  /** One source's state (a connection's ready/close event, a probe's answer). */
  set(source: string, ok: boolean): void {
    if (this.#closed || !this.#sources.has(source)) return;
    this.#sources.set(source, ok);
    let all = true;
    for (const v of this.#sources.values()) all &&= v;
    if (all === this.#up) return;
    this.#up = all;
    const now = this.#clock();
    if (all) {
      const first = !this.#everUp;
      this.#everUp = true;
      if (!first)
        this.#opts.logger?.warn(
          { store: this.store, downForMs: now - this.#downSince },
          `${this.store} reachable again`,
        );
    } else {
      this.#downSince = now;
      const down = [...this.#sources].filter(([, v]) => !v).map(([k]) => k);
      this.#opts.logger?.error({ store: this.store, connections: down }, `${this.store} unreachable`);
    }
    this.#opts.hooks?.onBackendUp?.(this.store, all);
  }

  /** Probe now (one probe at a time; callers during one share it). Resolves to the state after it. */
  check(): Promise<boolean> {
    const probe = this.#opts.probe;
    if (!probe || this.#closed) return Promise.resolve(this.#up);
    if (this.#probing) return this.#probing;
    const p = new Promise<boolean | Partial<Record<string, boolean>> | undefined>((resolve) => {
      const t = setTimeout(() => resolve(false), this.#timeoutMs);
      probe().then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        () => {
          clearTimeout(t);
          resolve(false);
        },
      );
    }).then((r) => {
      if (r === undefined) return this.#up;
      if (typeof r === 'boolean') this.observe(r);
      else for (const [s, v] of Object.entries(r)) if (v !== undefined) this.set(s, v);
      return this.#up;
    });
    this.#probing = p.finally(() => {
      this.#probing = undefined;
    });
    return this.#probing;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
