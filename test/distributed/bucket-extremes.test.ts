/**
 * The Redis token bucket with the extreme limits that versions before the rate-limit bounds let
 * the admin API store (requests_per_second 1e308 or 1e-300, burst 1e15): its TTL stays a PEXPIRE
 * argument Redis takes, so such a tenant is limited as stored instead of getting 503
 * limits_unavailable on every request; the same for several buckets at once (consumeAll, a key's
 * and its tenant's). Needs Redis at PORTICO_TEST_REDIS_URL (127.0.0.1:6379).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisCounterStore } from '../../src/state/redis/counters.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('distributed: token bucket with extreme stored limits', () => {
  const prefix = `portico-test-bucket-${randomBytes(4).toString('hex')}:`;
  let redis: Redis | undefined;
  let skip: string | undefined;

  before(async () => {
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      redis = r;
    } catch (e) {
      r.disconnect();
      skip = `redis unreachable at ${REDIS_URL}: ${String(e)}`;
      if (process.env.CI === 'true') throw new Error(`CI=true but ${skip}`);
      console.warn(`SKIPPED bucket tests: ${skip}`);
    }
  });
  after(async () => {
    if (!redis) return;
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('consumes without a Redis error; the bucket TTL is bounded', async (t) => {
    if (!redis) return t.skip(skip);
    const store = new RedisCounterStore({ redis, prefix, mode: 'fail_closed' });
    const cases = [
      { name: 'burst1e15', ratePerSec: 1, burst: 1e15, allowed: [true, true] },
      { name: 'huge', ratePerSec: 1e308, burst: 1e308, allowed: [true, true] },
      { name: 'tiny', ratePerSec: 1e-300, burst: 1, allowed: [true, false] },
      { name: 'normal', ratePerSec: 5, burst: 5, allowed: [true, true] },
    ];
    for (const c of cases) {
      const key = { tenant: 'bucket-extremes', name: c.name };
      for (const expected of c.allowed) {
        const r = await store.consume(key, { ratePerSec: c.ratePerSec, burst: c.burst });
        assert.equal(r.allowed, expected, `${c.name}: ${JSON.stringify(r)}`);
      }
      const keys = await redis.keys(`${prefix}*${c.name}*`);
      assert.equal(keys.length, 1, c.name);
      const ttl = await redis.pttl(keys[0] as string);
      assert.ok(ttl > 0 && ttl <= 1e13 + 1000, `${c.name}: pttl ${ttl}`);
    }
  });

  it('several buckets at once (consumeAll): the same limits, the same bounded TTL', async (t) => {
    if (!redis) return t.skip(skip);
    const store = new RedisCounterStore({ redis, prefix, mode: 'fail_closed' });
    const cases = [
      { name: 'all-burst1e15', ratePerSec: 1, burst: 1e15, allowed: [true, true] },
      { name: 'all-huge', ratePerSec: 1e308, burst: 1e308, allowed: [true, true] },
      { name: 'all-tiny', ratePerSec: 1e-300, burst: 1, allowed: [true, false] },
    ];
    for (const c of cases) {
      const tenant = 'bucket-extremes';
      const pair = [
        { key: { tenant, name: c.name }, ratePerSec: c.ratePerSec, burst: c.burst },
        { key: { tenant, name: `${c.name}-companion` }, ratePerSec: 5, burst: 5 },
      ];
      for (const expected of c.allowed) {
        const r = await store.consumeAll(pair);
        assert.equal(r.allowed, expected, `${c.name}: ${JSON.stringify(r)}`);
      }
      for (const name of [c.name, `${c.name}-companion`]) {
        const keys = await redis.keys(`${prefix}*${encodeURIComponent(name)}`);
        assert.equal(keys.length, 1, name);
        const ttl = await redis.pttl(keys[0] as string);
        assert.ok(ttl > 0 && ttl <= 1e13 + 1000, `${name}: pttl ${ttl}`);
      }
    }
  });
});
