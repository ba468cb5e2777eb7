import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { MemoryQuotaStore } from '../state/memory/quotas.js';
import type { QuotaReservation } from '../state/index.js';
import type { Logger } from '../telemetry/logger.js';
import { QuotaCommits } from './quota-commits.js';

/** A memory store whose commits fail while `down` (as Redis does while it restarts). */
class FlakyStore extends MemoryQuotaStore {
  down = false;
  tries = 0;
  override async commit(res: QuotaReservation, actual: { tokens: number; requests?: number }): Promise<void> {
    this.tries++;
    if (this.down) throw new Error('store unreachable');
    return super.commit(res, actual);
  }
}

const scopes = [{ name: 'tenant', limits: { day: { tokens: 1_000_000 } } }];

async function reserve(store: MemoryQuotaStore): Promise<QuotaReservation> {
  const r = await store.reserve({ tenant: 'acme', scopes, tokens: 10 });
  assert.ok(r.ok);
  return r.reservation;
}

async function used(store: MemoryQuotaStore): Promise<{ tokens: number; requests: number; held: number }> {
  const u = await store.usage('acme', 'tenant', 'day');
  return { tokens: u.usedTokens, requests: u.usedRequests, held: u.reservedTokens };
}

function logs(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }), lines };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

describe('QuotaCommits: a commit the store refuses is owed until it lands', () => {
  // The retry timer is unref'd (owed commits do not hold a stopping process; a server does): the
  // test holds the event loop open while it waits for them.
  const keep = setInterval(() => undefined, 1000);
  after(() => clearInterval(keep));

  it('lands at once when the store takes it', async () => {
    const store = new FlakyStore();
    const c = new QuotaCommits(store, logs().logger);
    assert.equal(await c.commit(await reserve(store), { tokens: 7, requests: 1 }), true);
    assert.deepEqual(await used(store), { tokens: 7, requests: 1, held: 0 });
    assert.equal(c.owed, 0);
    c.close();
  });

  it('retries every owed commit once the store is back, and each counts once', async () => {
    const store = new FlakyStore();
    const owedSeen: number[] = [];
    const { logger, lines } = logs();
    const c = new QuotaCommits(store, logger, { baseMs: 5, maxMs: 20, onOwed: (n) => owedSeen.push(n) });
    const rs = await Promise.all(Array.from({ length: 300 }, () => reserve(store)));
    store.down = true;
    const results = rs.map((r) => c.commit(r, { tokens: 2, requests: 1 }));
    await until(() => c.owed === 300);
    // While the store is down, the passes keep failing (with a growing delay) and nothing counts.
    await until(() => store.tries >= 300 + 2);
    assert.equal((await used(store)).tokens, 0);
    store.down = false;
    assert.deepEqual(await Promise.all(results), Array(300).fill(true));
    assert.deepEqual(await used(store), { tokens: 600, requests: 300, held: 0 });
    assert.equal(c.owed, 0);
    assert.equal(owedSeen.at(-1), 0);
    // One warning for the outage (not one per commit or per try), one line when it is over.
    assert.equal(lines.filter((l) => l.includes('a quota commit failed')).length, 1);
    assert.equal(lines.filter((l) => l.includes('owed quota commits landed')).length, 1);
    c.close();
  });

  it('a commit that did land but whose reply was lost counts once when retried', async () => {
    const store = new FlakyStore();
    const c = new QuotaCommits(store, logs().logger, { baseMs: 5 });
    const r = await reserve(store);
    // The store applies it, then the caller sees an error (a reply lost with the connection).
    const commit = store.commit.bind(store);
    let first = true;
    store.commit = async (res, actual) => {
      await commit(res, actual);
      if (first) {
        first = false;
        throw new Error('connection reset');
      }
    };
    assert.equal(await c.commit(r, { tokens: 5, requests: 1 }), true);
    assert.deepEqual(await used(store), { tokens: 5, requests: 1, held: 0 });
    c.close();
  });

  it('gives up after the retry window, and at shutdown: false, counted, logged', async () => {
    const store = new FlakyStore();
    let now = 1_000_000;
    let abandoned = 0;
    const { logger, lines } = logs();
    const c = new QuotaCommits(store, logger, {
      baseMs: 5,
      maxMs: 10,
      windowMs: 60_000,
      clock: () => now,
      onAbandoned: () => abandoned++,
    });
    store.down = true;
    const old = c.commit(await reserve(store), { tokens: 1 });
    await until(() => c.owed === 1);
    now += 60_000; // the first commit has been retried for the whole window
    const young = c.commit(await reserve(store), { tokens: 1 });
    assert.equal(await old, false);
    assert.equal(abandoned, 1);
    assert.equal(c.owed, 1);
    c.close();
    assert.equal(await young, false);
    assert.equal(abandoned, 2);
    assert.ok(lines.some((l) => l.includes('quota commits given up') && l.includes('shutting down')));
    // After close a failed commit is given up at once.
    assert.equal(await c.commit(await reserve(store), { tokens: 1 }), false);
    assert.equal(abandoned, 3);
  });

  it('beyond maxOwed a failed commit is given up at once', async () => {
    const store = new FlakyStore();
    const { logger, lines } = logs();
    const c = new QuotaCommits(store, logger, { baseMs: 60_000, maxOwed: 2 });
    store.down = true;
    const a = c.commit(await reserve(store), { tokens: 1 });
    const b = c.commit(await reserve(store), { tokens: 1 });
    await until(() => c.owed === 2);
    for (let i = 0; i < 3; i++) assert.equal(await c.commit(await reserve(store), { tokens: 1 }), false);
    // Logged once for the streak, not once per commit given up.
    assert.equal(lines.filter((l) => l.includes('too many owed')).length, 1);
    c.close();
    assert.deepEqual(await Promise.all([a, b]), [false, false]);
  });
});
