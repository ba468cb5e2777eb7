/**
 * The admission arithmetic, as pure functions. The memory store calls these directly; the Redis
 * Lua scripts (redis/scripts.ts) are line-for-line ports, and the conformance suite checks that
 * both agree.
 */

export interface BucketState {
  tokens: number;
  ts: number;
}

export interface BucketStep {
  state: BucketState;
  allowed: boolean;
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
  /** After this many ms idle the bucket is full again and may be forgotten. */
  ttlMs: number;
}

/** Token bucket: refill `rate` per second up to `burst`, take `cost` if available. */
export function bucketStep(
  prev: BucketState | undefined,
  now: number,
  rate: number,
  burst: number,
  cost: number,
): BucketStep {
  let tokens = burst;
  if (prev) tokens = Math.min(burst, prev.tokens + (Math.max(0, now - prev.ts) * rate) / 1000);
  let allowed = false;
  let retryAfterMs = 0;
  if (cost <= tokens) {
    allowed = true;
    tokens -= cost;
  } else {
    // cost > burst can never pass; report the time until the bucket is full.
    const need = Math.min(cost, burst) - tokens;
    retryAfterMs = Math.max(1, Math.ceil((need * 1000) / rate));
  }
  const resetMs = Math.ceil(((burst - tokens) * 1000) / rate);
  return {
    // Never move ts backwards (clock skew), or the next call would refill twice.
    state: { tokens, ts: prev ? Math.max(prev.ts, now) : now },
    allowed,
    remaining: Math.floor(tokens),
    retryAfterMs,
    resetMs,
    ttlMs: Math.ceil((burst * 1000) / rate) + 1000,
  };
}

/**
 * Several token buckets, all or none (CounterStore.consumeAll): each is bucketStep's step; when one
 * refuses, none is charged, and a bucket that had the cost reports its state uncharged (its step
 * with cost 0: allowed, remaining as it was). `prev[i]` is bucket i's state.
 */
export function bucketsStep(
  prev: readonly (BucketState | undefined)[],
  now: number,
  buckets: readonly { ratePerSec: number; burst: number; cost?: number }[],
): { allowed: boolean; steps: BucketStep[] } {
  const steps = buckets.map((b, i) => bucketStep(prev[i], now, b.ratePerSec, b.burst, b.cost ?? 1));
  const allowed = steps.every((s) => s.allowed);
  if (!allowed)
    for (let i = 0; i < steps.length; i++) {
      const b = buckets[i];
      if (steps[i]?.allowed === true && b) steps[i] = bucketStep(prev[i], now, b.ratePerSec, b.burst, 0);
    }
  return { allowed, steps };
}

export interface WindowStep {
  allowed: boolean;
  /** What was charged when allowed: `cost`, or with `minCost` as much as fits (at least minCost). */
  charged: number;
  /** Usage including this charge when allowed. */
  used: number;
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
  windowStart: number;
}

/**
 * Sliding-window counter: usage = previous window weighted by the part of it still inside the
 * sliding window + the current window. Charges land in the current fixed window. Without
 * `minCost` a charge is all or nothing; with it, the charge is as many whole units as fit, up to
 * `cost` and at least `minCost` (a reservation that binds the answer's length to what is left).
 */
export function windowStep(
  prevCount: number,
  curCount: number,
  now: number,
  windowMs: number,
  limit: number,
  cost: number,
  minCost?: number,
): WindowStep {
  const windowStart = Math.floor(now / windowMs) * windowMs;
  const elapsed = now - windowStart;
  const weight = 1 - elapsed / windowMs;
  const used = prevCount * weight + curCount;
  let charge = cost;
  let allowed: boolean;
  if (minCost === undefined || cost === 0) allowed = cost === 0 ? used < limit : used + cost <= limit;
  else {
    charge = Math.min(cost, Math.floor(limit - used));
    allowed = charge >= minCost && charge > 0;
  }
  // A refused request needed at least this much.
  const need = minCost === undefined ? cost : Math.min(cost, minCost);
  let retryAfterMs = 0;
  if (!allowed) {
    if (curCount + need <= limit && prevCount > 0) {
      // Wait until the previous window has decayed enough.
      const w = (limit - curCount - need) / prevCount;
      retryAfterMs = windowStart + (1 - w) * windowMs - now;
    } else if (need <= limit && curCount > 0) {
      const w = (limit - need) / curCount;
      retryAfterMs = windowStart + windowMs + (1 - w) * windowMs - now;
    } else {
      retryAfterMs = windowStart + 2 * windowMs - now;
    }
    retryAfterMs = Math.max(1, Math.ceil(retryAfterMs));
  }
  const after = allowed ? used + charge : used;
  const cur = allowed ? curCount + charge : curCount;
  const resetMs = Math.ceil(cur > 0 ? windowStart + 2 * windowMs - now : windowStart + windowMs - now);
  return {
    allowed,
    charged: allowed ? charge : 0,
    used: after,
    remaining: Math.max(0, Math.floor(limit - after)),
    retryAfterMs,
    resetMs,
    windowStart,
  };
}
