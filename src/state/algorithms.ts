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

export interface WindowStep {
  allowed: boolean;
  /** Usage including this charge when allowed. */
  used: number;
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
  windowStart: number;
}

/**
 * Sliding-window counter: usage = previous window weighted by the part of it still inside the
 * sliding window + the current window. Charges land in the current fixed window.
 */
export function windowStep(
  prevCount: number,
  curCount: number,
  now: number,
  windowMs: number,
  limit: number,
  cost: number,
): WindowStep {
  const windowStart = Math.floor(now / windowMs) * windowMs;
  const elapsed = now - windowStart;
  const weight = 1 - elapsed / windowMs;
  const used = prevCount * weight + curCount;
  const allowed = cost === 0 ? used < limit : used + cost <= limit;
  let retryAfterMs = 0;
  if (!allowed) {
    if (curCount + cost <= limit && prevCount > 0) {
      // Wait until the previous window has decayed enough.
      const w = (limit - curCount - cost) / prevCount;
      retryAfterMs = windowStart + (1 - w) * windowMs - now;
    } else if (cost <= limit && curCount > 0) {
      const w = (limit - cost) / curCount;
      retryAfterMs = windowStart + windowMs + (1 - w) * windowMs - now;
    } else {
      retryAfterMs = windowStart + 2 * windowMs - now;
    }
    retryAfterMs = Math.max(1, Math.ceil(retryAfterMs));
  }
  const after = allowed ? used + cost : used;
  const cur = allowed ? curCount + cost : curCount;
  const resetMs = Math.ceil(cur > 0 ? windowStart + 2 * windowMs - now : windowStart + windowMs - now);
  return {
    allowed,
    used: after,
    remaining: Math.max(0, Math.floor(limit - after)),
    retryAfterMs,
    resetMs,
    windowStart,
  };
}
