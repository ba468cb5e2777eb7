import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DualInvalidationBus, type VersionChannel } from './dual-bus.js';
import { KeyResolver } from './key-cache.js';
import { MemoryKeyStore, MemoryTenantStore } from './memory/catalog.js';
import type { InvalidationBus, InvalidationEvent, StateErrorEvent } from './ports.js';

/**
 * One Redis as two replicas see it: `reach` false is a replica cut off from it (its publish and
 * version poll fail), while the other still reaches it.
 */
class SharedRedis {
  v = 0;
  subs = new Set<(e: InvalidationEvent) => void>();
  view(): InvalidationBus & { reach: boolean } {
    const subs = this.subs;
    const bump = (): number => ++this.v;
    const read = (): number => this.v;
    return {
      reach: true,
      async publish(e: InvalidationEvent): Promise<void> {
        if (!this.reach) throw new Error('redis unreachable');
        bump();
        for (const f of subs) f(e);
      },
      subscribe(fn: (e: InvalidationEvent) => void): () => void {
        subs.add(fn);
        return () => subs.delete(fn);
      },
      async version(): Promise<number> {
        if (!this.reach) throw new Error('redis unreachable');
        return read();
      },
      async close(): Promise<void> {},
    };
  }
}

/** The version row, reached by one replica (`down` is its Postgres connection failing). */
class SharedRow {
  v = 0;
  view(): VersionChannel & { down: boolean } {
    const bump = (): number => ++this.v;
    const read = (): number => this.v;
    return {
      store: 'postgres',
      down: false,
      async bump(): Promise<void> {
        if (this.down) throw new Error('postgres unreachable');
        bump();
      },
      async read(): Promise<number> {
        if (this.down) throw new Error('postgres unreachable');
        return read();
      },
    };
  }
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function within(ms: number, cond: () => boolean): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) return -1;
    await tick(5);
  }
  return Date.now() - t0;
}

describe('DualInvalidationBus', () => {
  it('a change published by a replica cut off from Redis reaches another one through the polled version', async () => {
    const redis = new SharedRedis();
    const row = new SharedRow();
    const ra = redis.view();
    const a = new DualInvalidationBus(ra, row.view(), { pollMs: 50 });
    const b = new DualInvalidationBus(redis.view(), row.view(), { pollMs: 50 });
    const heardA: InvalidationEvent[] = [];
    const heardB: InvalidationEvent[] = [];
    a.subscribe((e) => heardA.push(e));
    b.subscribe((e) => heardB.push(e));
    await Promise.all([a.check(), b.check()]);
    try {
      ra.reach = false;
      await a.publish({ kind: 'key_revoked', tenant: 't', id: 'k1' });
      assert.equal(a.undelivered(), false, 'Postgres took it');
      assert.deepEqual(
        heardA,
        [{ kind: 'key_revoked', tenant: 't', id: 'k1' }],
        'A hears its own change at once',
      );
      const after = await within(1000, () => heardB.length > 0);
      assert.ok(after >= 0 && after < 200, `B heard it after ${after} ms`);
      // Redis version unchanged: B's caches, which poll it, would never have known.
      assert.equal(await b.version(), 0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('with both channels failing the change is owed, reported, and delivered once one is back', async () => {
    const redis = new SharedRedis();
    const row = new SharedRow();
    const ra = redis.view();
    const pa = row.view();
    const events: StateErrorEvent[] = [];
    const logged: string[] = [];
    const a = new DualInvalidationBus(ra, pa, {
      pollMs: 50,
      retryMs: 20,
      hooks: { onError: (e) => events.push(e) },
      logger: { warn: (_o, m) => logged.push(m), error: (_o, m) => logged.push(m) },
    });
    const b = new DualInvalidationBus(redis.view(), row.view(), { pollMs: 50 });
    const heardB: InvalidationEvent[] = [];
    b.subscribe((e) => heardB.push(e));
    await Promise.all([a.check(), b.check()]);
    try {
      ra.reach = false;
      pa.down = true;
      await a.publish({ kind: 'key_revoked', tenant: 't', id: 'k1' });
      assert.equal(a.undelivered(), true);
      assert.ok(logged.some((m) => /reached neither redis nor postgres/.test(m)));
      assert.ok(
        events.some((e) => e.store === 'postgres' && e.op === 'publish' && e.mode === 'retry'),
        JSON.stringify(events.map((e) => [e.store, e.op, e.mode])),
      );
      await tick(100);
      assert.equal(heardB.length, 0, 'nothing reached B');
      pa.down = false;
      const after = await within(1000, () => !a.undelivered() && heardB.length > 0);
      assert.ok(after >= 0, 'delivered once Postgres is back');
      assert.ok(logged.some((m) => /owed invalidation was delivered/.test(m)));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('an unreadable version row never fails the caches: version() is the primary bus', async () => {
    const redis = new SharedRedis();
    const row = new SharedRow();
    const p = row.view();
    p.down = true;
    const bus = new DualInvalidationBus(redis.view(), p, { pollMs: 20 });
    try {
      await bus.check();
      assert.equal(await bus.version(), 0);
      await bus.publish({ kind: 'key_created', tenant: 't', id: 'k' });
      assert.equal(bus.undelivered(), false, 'Redis took it');
      assert.equal(await bus.version(), 1);
    } finally {
      await bus.close();
    }
  });

  it('a key revoked on a replica cut off from Redis is refused by another one whose cache trusts Redis', async () => {
    const redis = new SharedRedis();
    const row = new SharedRow();
    const ra = redis.view();
    const tenants = new MemoryTenantStore();
    const keys = new MemoryKeyStore(tenants);
    const a = new DualInvalidationBus(ra, row.view(), { pollMs: 50 });
    const b = new DualInvalidationBus(redis.view(), row.view(), { pollMs: 50 });
    // Positive entries far longer than the test: only an invalidation can make it pass.
    const resolver = new KeyResolver(keys, b, { ttlMs: 600_000, pollMs: 10 });
    try {
      await tenants.create({
        id: 't',
        display_name: 't',
        company: null,
        industry: null,
        system_prompt: null,
        prompt_policy: null,
        allowed_models: ['*'],
        limits: null,
        priority: 'normal',
      });
      const k = await keys.create({ tenant_id: 't' });
      await b.check();
      assert.equal((await resolver.resolve(k.plaintext)).ok, true);
      ra.reach = false;
      await keys.revoke(k.key.id);
      await a.publish({ kind: 'key_revoked', tenant: 't', id: k.key.id });
      let refused = false;
      for (let i = 0; i < 100 && !refused; i++) {
        refused = !(await resolver.resolve(k.plaintext)).ok;
        if (!refused) await tick(10);
      }
      assert.equal(refused, true);
    } finally {
      resolver.close();
      await a.close();
      await b.close();
    }
  });
});
