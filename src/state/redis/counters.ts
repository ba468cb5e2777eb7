/** Redis counters (distributed family): one limit across every replica. All decisions are Lua scripts. */
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
import { asArray, guarded, num, runScript, scopedKey, type RedisContext } from './client.js';
import { ACQUIRE, BUCKET, BUCKETS, INFLIGHT, RENEW, WINDOW, WINDOW_SETTLE } from './scripts.js';

export class RedisCounterStore implements CounterStore {
  readonly #ctx: RedisContext;
  /** When absent, scripts read Redis TIME (one clock for all replicas); windows use the local clock. */
  readonly #clock: Clock | undefined;

  constructor(ctx: RedisContext, opts: { clock?: Clock } = {}) {
    this.#ctx = ctx;
    this.#clock = opts.clock;
  }

  #now(explicit: number | undefined): string | number {
    return explicit ?? this.#clock?.() ?? '';
  }

  #windowKey(k: ScopeKey, windowMs: number, start: number): string {
    return `${scopedKey(this.#ctx.prefix, 'rw', k)}:${windowMs}:${start}`;
  }

  async consume(key: ScopeKey, opts: BucketOptions): Promise<LimitResult> {
    assertPositive('ratePerSec', opts.ratePerSec);
    assertPositive('burst', opts.burst);
    return guarded(
      this.#ctx,
      'counters',
      'consume',
      async () => {
        const r = asArray(
          await runScript(
            this.#ctx.redis,
            BUCKET,
            [scopedKey(this.#ctx.prefix, 'rl', key)],
            [opts.ratePerSec, opts.burst, opts.cost ?? 1, this.#now(opts.now)],
          ),
        );
        return {
          allowed: num(r[0]) === 1,
          remaining: num(r[1]),
          retryAfterMs: num(r[2]),
          resetMs: num(r[3]),
          limit: opts.burst,
        };
      },
      () => ({
        allowed: true,
        remaining: opts.burst,
        retryAfterMs: 0,
        resetMs: 0,
        limit: opts.burst,
        degraded: true,
      }),
    );
  }

  async consumeAll(buckets: readonly BucketCheck[], now?: number): Promise<AllLimitResult> {
    assertBucketSet(buckets);
    if (buckets.length === 0) return { allowed: true, results: [] };
    const keys: string[] = [];
    const args: (string | number)[] = [this.#now(now)];
    for (const b of buckets) {
      keys.push(scopedKey(this.#ctx.prefix, 'rl', b.key));
      args.push(b.ratePerSec, b.burst, b.cost ?? 1);
    }
    return guarded(
      this.#ctx,
      'counters',
      'consumeAll',
      async () => {
        const r = asArray(await runScript(this.#ctx.redis, BUCKETS, keys, args));
        const results: LimitResult[] = buckets.map((b, i) => ({
          allowed: num(r[1 + i * 4]) === 1,
          remaining: num(r[2 + i * 4]),
          retryAfterMs: num(r[3 + i * 4]),
          resetMs: num(r[4 + i * 4]),
          limit: b.burst,
        }));
        return { allowed: num(r[0]) === 1, results };
      },
      () => ({
        allowed: true,
        results: buckets.map((b) => ({
          allowed: true,
          remaining: b.burst,
          retryAfterMs: 0,
          resetMs: 0,
          limit: b.burst,
          degraded: true,
        })),
        degraded: true,
      }),
    );
  }

  async consumeWindow(key: ScopeKey, opts: WindowOptions): Promise<WindowResult> {
    assertPositive('limit', opts.limit);
    assertPositive('windowMs', opts.windowMs);
    const now = opts.now ?? this.#clock?.() ?? Date.now();
    const start = Math.floor(now / opts.windowMs) * opts.windowMs;
    const cost = Math.max(0, opts.cost);
    return guarded(
      this.#ctx,
      'counters',
      'consumeWindow',
      async () => {
        const r = asArray(
          await runScript(
            this.#ctx.redis,
            WINDOW,
            [
              this.#windowKey(key, opts.windowMs, start),
              this.#windowKey(key, opts.windowMs, start - opts.windowMs),
            ],
            [now, opts.windowMs, opts.limit, cost, start, opts.minCost ?? ''],
          ),
        );
        const res: WindowResult = {
          allowed: num(r[0]) === 1,
          used: num(r[1]),
          remaining: num(r[2]),
          retryAfterMs: num(r[3]),
          resetMs: num(r[4]),
          limit: opts.limit,
        };
        if (res.allowed) res.charge = { key, windowMs: opts.windowMs, windowStart: start, cost: num(r[5]) };
        return res;
      },
      () => ({
        allowed: true,
        used: 0,
        remaining: opts.limit,
        retryAfterMs: 0,
        resetMs: 0,
        limit: opts.limit,
        degraded: true,
        // Nothing was written: its settle adds the whole actual cost (see settleWindow).
        charge: { key, windowMs: opts.windowMs, windowStart: start, cost, degraded: true },
      }),
    );
  }

  async settleWindow(charge: WindowCharge, actualCost: number): Promise<void> {
    // A degraded charge (fail_open while Redis was down) never reached the window: add all of the
    // actual cost, creating the window if no one else wrote it, while it still counts (it is the
    // previous window until windowStart + 2 windows).
    const degraded = charge.degraded === true;
    const delta = degraded ? Math.max(0, actualCost) : actualCost - charge.cost;
    if (delta === 0) return;
    let create: number | '' = '';
    if (degraded) {
      const left = charge.windowStart + 2 * charge.windowMs - (this.#clock?.() ?? Date.now());
      if (left <= 0) return;
      create = Math.ceil(left) + 1000;
    }
    await guarded(
      this.#ctx,
      'counters',
      'settleWindow',
      async () => {
        await runScript(
          this.#ctx.redis,
          WINDOW_SETTLE,
          [this.#windowKey(charge.key, charge.windowMs, charge.windowStart)],
          [delta, create],
        );
      },
      () => undefined,
    );
  }

  async acquire(key: ScopeKey, opts: AcquireOptions): Promise<AcquireResult> {
    const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    const id = newId();
    return guarded(
      this.#ctx,
      'inflight',
      'acquire',
      async () => {
        const r = asArray(
          await runScript(
            this.#ctx.redis,
            ACQUIRE,
            [scopedKey(this.#ctx.prefix, 'if', key)],
            [this.#now(opts.now), opts.max, leaseMs, id],
          ),
        );
        const current = num(r[1]);
        if (num(r[0]) !== 1) return { lease: null, current };
        return { lease: { key, id, expiresAt: num(r[2]) }, current };
      },
      () => ({ lease: { key, id, expiresAt: Date.now() + leaseMs }, current: 0, degraded: true }),
    );
  }

  async renew(lease: InflightLease, leaseMs = DEFAULT_LEASE_MS): Promise<boolean> {
    return guarded(
      this.#ctx,
      'inflight',
      'renew',
      async () => {
        const r = asArray(
          await runScript(
            this.#ctx.redis,
            RENEW,
            [scopedKey(this.#ctx.prefix, 'if', lease.key)],
            [this.#now(undefined), leaseMs, lease.id],
          ),
        );
        if (num(r[0]) !== 1) return false;
        lease.expiresAt = num(r[1]);
        return true;
      },
      () => true,
    );
  }

  async release(lease: InflightLease): Promise<void> {
    // A failed release is not refused in either mode: the lease expires on its own.
    try {
      await this.#ctx.redis.zrem(scopedKey(this.#ctx.prefix, 'if', lease.key), lease.id);
    } catch (error) {
      this.#ctx.hooks?.onError?.({
        store: 'redis',
        port: 'inflight',
        op: 'release',
        mode: this.#ctx.mode,
        error,
      });
      this.#ctx.logger?.warn(
        { err: error, store: 'redis' },
        'redis inflight.release failed; lease will expire',
      );
    }
  }

  async inflight(key: ScopeKey): Promise<number> {
    return guarded(
      this.#ctx,
      'inflight',
      'count',
      async () =>
        num(
          await runScript(
            this.#ctx.redis,
            INFLIGHT,
            [scopedKey(this.#ctx.prefix, 'if', key)],
            [this.#now(undefined)],
          ),
        ),
      () => 0,
    );
  }
}
