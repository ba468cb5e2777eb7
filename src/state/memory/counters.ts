/** In-process counters for the embedded family (one replica). Each call is one synchronous step. */
import { bucketStep, bucketsStep, windowStep, type BucketState } from '../algorithms.js';
import type {
  AcquireOptions,
  AcquireResult,
  AllLimitResult,
  BucketCheck,
  BucketOptions,
  Clock,
  CounterStore,
  InflightLease,
  LimitResult,
  ScopeKey,
  WindowCharge,
  WindowOptions,
  WindowResult,
} from '../ports.js';
import { assertBucketSet, assertPositive, DEFAULT_LEASE_MS, newId } from '../util.js';

function flat(k: ScopeKey): string {
  return `${k.tenant}\u0000${k.name}`;
}

/** Sweep expired entries every this many operations, so idle keys do not pile up. */
const SWEEP_EVERY = 4096;

export class MemoryCounterStore implements CounterStore {
  readonly #clock: Clock;
  readonly #buckets = new Map<string, BucketState & { expires: number }>();
  /** key -> window start -> count */
  readonly #windows = new Map<string, { counts: Map<number, number>; expires: number }>();
  readonly #leases = new Map<string, Map<string, number>>();
  #ops = 0;

  constructor(opts: { clock?: Clock } = {}) {
    this.#clock = opts.clock ?? Date.now;
  }

  #tick(now: number): void {
    if (++this.#ops % SWEEP_EVERY !== 0) return;
    for (const [k, b] of this.#buckets) if (b.expires <= now) this.#buckets.delete(k);
    for (const [k, w] of this.#windows) if (w.expires <= now) this.#windows.delete(k);
    for (const [k, m] of this.#leases) {
      for (const [id, exp] of m) if (exp <= now) m.delete(id);
      if (m.size === 0) this.#leases.delete(k);
    }
  }

  async consume(key: ScopeKey, opts: BucketOptions): Promise<LimitResult> {
    assertPositive('ratePerSec', opts.ratePerSec);
    assertPositive('burst', opts.burst);
    const now = opts.now ?? this.#clock();
    this.#tick(now);
    const k = flat(key);
    const prev = this.#buckets.get(k);
    const step = bucketStep(prev, now, opts.ratePerSec, opts.burst, opts.cost ?? 1);
    if (prev) {
      // Updated in place: one bucket object per key for its whole life.
      prev.tokens = step.state.tokens;
      prev.ts = step.state.ts;
      prev.expires = now + step.ttlMs;
    } else this.#buckets.set(k, { ...step.state, expires: now + step.ttlMs });
    return {
      allowed: step.allowed,
      remaining: step.remaining,
      retryAfterMs: step.retryAfterMs,
      resetMs: step.resetMs,
      limit: opts.burst,
    };
  }

  async consumeAll(buckets: readonly BucketCheck[], now?: number): Promise<AllLimitResult> {
    assertBucketSet(buckets);
    const t = now ?? this.#clock();
    this.#tick(t);
    const keys = buckets.map((b) => flat(b.key));
    const prev = keys.map((k) => this.#buckets.get(k));
    const { allowed, steps } = bucketsStep(prev, t, buckets);
    const results: LimitResult[] = [];
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as (typeof steps)[number];
      const b = buckets[i] as BucketCheck;
      // Refused: nothing is written (a bucket's refill is worked out from its last charge).
      if (allowed) {
        const p = prev[i];
        if (p) {
          p.tokens = step.state.tokens;
          p.ts = step.state.ts;
          p.expires = t + step.ttlMs;
        } else this.#buckets.set(keys[i] as string, { ...step.state, expires: t + step.ttlMs });
      }
      results.push({
        allowed: step.allowed,
        remaining: step.remaining,
        retryAfterMs: step.retryAfterMs,
        resetMs: step.resetMs,
        limit: b.burst,
      });
    }
    return { allowed, results };
  }

  async consumeWindow(key: ScopeKey, opts: WindowOptions): Promise<WindowResult> {
    assertPositive('limit', opts.limit);
    assertPositive('windowMs', opts.windowMs);
    const now = opts.now ?? this.#clock();
    this.#tick(now);
    const k = `${flat(key)}\u0000${opts.windowMs}`;
    let w = this.#windows.get(k);
    if (!w) {
      w = { counts: new Map(), expires: 0 };
      this.#windows.set(k, w);
    }
    const start = Math.floor(now / opts.windowMs) * opts.windowMs;
    for (const s of w.counts.keys()) if (s < start - opts.windowMs) w.counts.delete(s);
    const step = windowStep(
      w.counts.get(start - opts.windowMs) ?? 0,
      w.counts.get(start) ?? 0,
      now,
      opts.windowMs,
      opts.limit,
      opts.cost,
      opts.minCost,
    );
    const result: WindowResult = {
      allowed: step.allowed,
      remaining: step.remaining,
      retryAfterMs: step.retryAfterMs,
      resetMs: step.resetMs,
      limit: opts.limit,
      used: step.used,
    };
    if (step.allowed) {
      w.counts.set(start, (w.counts.get(start) ?? 0) + step.charged);
      w.expires = start + 2 * opts.windowMs;
      result.charge = { key, windowMs: opts.windowMs, windowStart: start, cost: step.charged };
    }
    return result;
  }

  async settleWindow(charge: WindowCharge, actualCost: number): Promise<void> {
    if (charge.degraded === true) {
      this.#settleDegraded(charge, actualCost);
      return;
    }
    const delta = actualCost - charge.cost;
    if (delta === 0) return;
    const w = this.#windows.get(`${flat(charge.key)}\u0000${charge.windowMs}`);
    if (!w) return; // window already gone: nothing left to correct
    const cur = w.counts.get(charge.windowStart);
    if (cur === undefined) return;
    w.counts.set(charge.windowStart, Math.max(0, cur + delta));
  }

  /**
   * This store never degrades, but the CounterStore contract is the same: a degraded charge's
   * estimate was never added, so all of the actual cost is, while its window still counts.
   */
  #settleDegraded(charge: WindowCharge, actualCost: number): void {
    if (actualCost <= 0) return;
    const expires = charge.windowStart + 2 * charge.windowMs;
    if (expires <= this.#clock()) return;
    const k = `${flat(charge.key)}\u0000${charge.windowMs}`;
    let w = this.#windows.get(k);
    if (!w) {
      w = { counts: new Map(), expires };
      this.#windows.set(k, w);
    } else if (w.expires < expires) w.expires = expires;
    w.counts.set(charge.windowStart, (w.counts.get(charge.windowStart) ?? 0) + actualCost);
  }

  #live(k: string, now: number): Map<string, number> {
    let m = this.#leases.get(k);
    if (!m) {
      m = new Map();
      this.#leases.set(k, m);
    }
    for (const [id, exp] of m) if (exp <= now) m.delete(id);
    return m;
  }

  async acquire(key: ScopeKey, opts: AcquireOptions): Promise<AcquireResult> {
    const now = opts.now ?? this.#clock();
    this.#tick(now);
    const m = this.#live(flat(key), now);
    if (m.size >= opts.max) return { lease: null, current: m.size };
    const lease: InflightLease = { key, id: newId(), expiresAt: now + (opts.leaseMs ?? DEFAULT_LEASE_MS) };
    m.set(lease.id, lease.expiresAt);
    return { lease, current: m.size };
  }

  async renew(lease: InflightLease, leaseMs = DEFAULT_LEASE_MS): Promise<boolean> {
    const now = this.#clock();
    const m = this.#live(flat(lease.key), now);
    if (!m.has(lease.id)) return false;
    lease.expiresAt = now + leaseMs;
    m.set(lease.id, lease.expiresAt);
    return true;
  }

  async release(lease: InflightLease): Promise<void> {
    this.#leases.get(flat(lease.key))?.delete(lease.id);
  }

  async inflight(key: ScopeKey): Promise<number> {
    return this.#live(flat(key), this.#clock()).size;
  }
}
