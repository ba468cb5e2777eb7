/**
 * An entry copied from the Redis tier (L2) into a replica's L1 lives there no longer than it has
 * left in L2: another replica stored it, and its age counts. Before, the copy got a fresh L1 TTL,
 * so a replica could serve an answer for up to `l1.ttl_seconds` after L2 had expired it. Needs
 * Redis on 127.0.0.1:6379 (REDIS_URL); under CI=true it must run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ResponseCache } from '../../src/cache/response-cache.js';
import { CacheSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { GatewayMetrics } from '../../src/telemetry/metrics.js';
import { redisUnreachable } from '../support/processes.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';

describe('cache: an L2 hit copied into L1 keeps its L2 expiry', () => {
  let skipReason: string | undefined;
  const prefix = `portico-l2-ttl-${randomBytes(4).toString('hex')}:`;
  const caches: ResponseCache[] = [];

  before(async () => {
    skipReason = await redisUnreachable(REDIS_URL);
    if (skipReason) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${skipReason}`);
      console.warn(`SKIPPED cache L2 TTL test: ${skipReason}`);
    }
  });
  after(async () => {
    for (const c of caches) await c.close();
    if (skipReason) return;
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
    r.disconnect();
  });

  function replica(): ResponseCache {
    const cfg = CacheSchema.parse({
      l1: { ttl_seconds: 60 },
      l2: { enabled: true, url: REDIS_URL, key_prefix: prefix, ttl_seconds: 1 },
    });
    const cache = new ResponseCache(cfg, {
      metrics: new GatewayMetrics({ version: 'test', defaultMetrics: false }),
      logger: createLogger('silent'),
      redisUrl: REDIS_URL,
    });
    caches.push(cache);
    return cache;
  }

  it('a replica stops serving it when L2 expires it, not l1.ttl later', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const a = replica();
    const b = replica();
    // Stored again until B sees it: the replicas connect to Redis in the background (a store while
    // A is not connected yet is skipped), and store() does not wait for the L2 write.
    let hit;
    for (let i = 0; i < 200 && !hit; i++) {
      a.store('acme', 'h1', { kind: 'json', body: { answer: 42 }, storedAt: Date.now() });
      await sleep(20);
      hit = await b.lookup('acme', 'h1');
    }
    assert.equal(hit?.tier, 'l2', 'B finds A’s entry in L2');
    assert.equal((await b.lookup('acme', 'h1'))?.tier, 'l1', 'and then in its own L1');
    await sleep(1200); // past the entry's 1 s in L2
    assert.equal(await b.lookup('acme', 'h1'), undefined, 'B’s L1 copy expired with L2 (was: served 60 s)');
    // An entry already past its L2 life (clocks, a slow read) is not copied into L1 at all.
    a.store('acme', 'h2', { kind: 'json', body: { answer: 43 }, storedAt: Date.now() - 5000 });
    await sleep(50);
    assert.equal((await b.lookup('acme', 'h2'))?.tier, 'l2');
    assert.equal((await b.lookup('acme', 'h2'))?.tier, 'l2', 'still from L2: nothing copied into L1');
  });
});
