import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BusCache, TenantResolver } from './key-cache.js';
import { StateInvalidInputError, StateUnavailableError } from './errors.js';
import { MemoryTenantStore } from './memory/catalog.js';
import type { StateErrorEvent } from './ports.js';
import type { InvalidationBus, InvalidationEvent } from './ports.js';

/** A bus whose messages can be lost and whose version poll can fail. */
class FakeBus implements InvalidationBus {
  v = 0;
  down = false;
  subs = new Set<(e: InvalidationEvent) => void>();
  async publish(e: InvalidationEvent): Promise<void> {
    this.v++;
    for (const f of this.subs) f(e);
  }
  subscribe(fn: (e: InvalidationEvent) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }
  async version(): Promise<number> {
    if (this.down) throw new Error('bus down');
    return this.v;
  }
  async close(): Promise<void> {}
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait (bounded) until cond holds. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await tick(5);
}

describe('BusCache', () => {
  it('serves hits from cache; a bus message clears it', async () => {
    const bus = new FakeBus();
    const c = new BusCache<string>(bus, { pollMs: 10 });
    let loads = 0;
    const load = async (): Promise<string> => `v${++loads}`;
    try {
      assert.equal(await c.get('k', load), 'v1');
      assert.equal(await c.get('k', load), 'v1');
      await bus.publish({ kind: 'key_revoked', tenant: 't', id: 'k' });
      assert.equal(await c.get('k', load), 'v2');
    } finally {
      c.close();
    }
  });

  it('a lost message is caught by the version poll', async () => {
    const bus = new FakeBus();
    const c = new BusCache<string>(bus, { pollMs: 10 });
    let loads = 0;
    const load = async (): Promise<string> => `v${++loads}`;
    try {
      await tick(20); // first poll records the version
      assert.equal(await c.get('k', load), 'v1');
      bus.v++; // published elsewhere; our subscriber missed it
      let got = 'v1';
      for (let i = 0; i < 100 && got === 'v1'; i++) {
        await tick(5);
        got = (await c.get('k', load)) ?? '';
      }
      assert.equal(got, 'v2');
    } finally {
      c.close();
    }
  });

  it('bypasses the cache while the bus is unreachable, and reports it once', async () => {
    const bus = new FakeBus();
    const errors: string[] = [];
    const c = new BusCache<string>(bus, {
      pollMs: 10,
      hooks: { onError: (e) => errors.push(`${e.port}:${e.mode}`) },
    });
    let loads = 0;
    const load = async (): Promise<string> => `v${++loads}`;
    try {
      await c.get('k', load);
      bus.down = true;
      await until(() => errors.length > 0);
      await tick(30);
      const a = await c.get('k', load);
      const b = await c.get('k', load);
      assert.notEqual(a, b); // every lookup goes to the store
      assert.deepEqual(errors, ['invalidation:fail_closed']);
      bus.down = false;
      // Once a poll succeeds the cache serves hits again (bounded wait: timers may run late under load).
      let cached = false;
      for (let i = 0; i < 200 && !cached; i++) {
        await tick(5);
        cached = (await c.get('k', load)) === (await c.get('k', load));
      }
      assert.equal(cached, true);
    } finally {
      c.close();
    }
  });

  it('a lookup racing an invalidation does not re-cache the stale answer', async () => {
    const bus = new FakeBus();
    const c = new BusCache<string>(bus, { pollMs: 1000 });
    let n = 0;
    try {
      const slow = c.get('k', async () => {
        await tick(20);
        return `v${++n}`;
      });
      await tick(5);
      await bus.publish({ kind: 'key_revoked', tenant: 't', id: 'k' });
      assert.equal(await slow, 'v1');
      assert.equal(await c.get('k', async () => `v${++n}`), 'v2');
    } finally {
      c.close();
    }
  });

  it('an input the store refuses stays invalid input (a 400), not the store unavailable (review, 2026-12-14)', async () => {
    // Before: POST /admin/playground with tenant "a\u0000b" answered 503 state_unavailable,
    // logged "lookup failed" and counted a state error.
    const bus = new FakeBus();
    const events: StateErrorEvent[] = [];
    const logged: string[] = [];
    const opts = {
      pollMs: 10_000,
      hooks: { onError: (e: StateErrorEvent) => void events.push(e) },
      logger: { warn: () => undefined, error: (_o: object, m: string) => void logged.push(m) },
    };
    const tenants = new TenantResolver(new MemoryTenantStore(), bus, opts);
    const c = new BusCache<string>(bus, opts);
    try {
      for (const id of ['a\u0000b', '\ud800'])
        await assert.rejects(tenants.get(id), (e: unknown) => {
          assert.ok(e instanceof StateInvalidInputError, String(e));
          assert.equal(e.field, 'id');
          return true;
        });
      // A store failure is still "unavailable", reported and logged.
      await assert.rejects(
        c.get('k', () => Promise.reject(new Error('connection refused'))),
        StateUnavailableError,
      );
      assert.equal(events.length, 1);
      assert.deepEqual(logged, ['key/tenant lookup failed']);
    } finally {
      tenants.close();
      c.close();
    }
  });
});
