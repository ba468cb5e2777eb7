import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LedgerWriter } from './ledger-writer.js';
import { isRefusedData, StateInvalidInputError, StateUnavailableError } from './errors.js';
import { MemoryLedgerStore } from './memory/catalog.js';
import type {
  LedgerFilter,
  LedgerGroupBy,
  LedgerRecord,
  LedgerRow,
  LedgerStore,
  StateErrorEvent,
  StateLogger,
} from './ports.js';

function rec(id: string): LedgerRecord {
  return {
    id,
    time: Date.UTC(2026, 10, 22),
    tenant: 'acme',
    key_id: 'key_a',
    model: 'm',
    backend: 'b',
    tokens_in: 1,
    tokens_out: 1,
    estimated: false,
    cost_usd: 0,
    latency_ms: 1,
    status: 200,
    cache_hit: false,
    request_id: id,
  };
}

/** Fails the first `failures` appends (after writing, to mimic an ambiguous commit when `ambiguous`). */
class FlakyStore implements LedgerStore {
  readonly inner = new MemoryLedgerStore();
  calls = 0;
  batchSizes: number[] = [];
  #failures: number;
  readonly #ambiguous: boolean;
  constructor(failures: number, ambiguous = false) {
    this.#failures = failures;
    this.#ambiguous = ambiguous;
  }
  async append(records: LedgerRecord[]): Promise<number> {
    this.calls++;
    this.batchSizes.push(records.length);
    if (this.#failures > 0) {
      this.#failures--;
      if (this.#ambiguous) await this.inner.append(records);
      throw new Error('db down');
    }
    return this.inner.append(records);
  }
  query(f: LedgerFilter, g: LedgerGroupBy): Promise<LedgerRow[]> {
    return this.inner.query(f, g);
  }
  count(f: LedgerFilter): Promise<number> {
    return this.inner.count(f);
  }
}

/**
 * Refuses, as Postgres does (SQLSTATE 22021, the whole batch), a batch with a NUL character in a
 * record; after `downAfter` appends it is down (a connection error) until `down` is cleared.
 */
class PickyStore implements LedgerStore {
  readonly inner = new MemoryLedgerStore();
  batchSizes: number[] = [];
  downAfter = Infinity;
  down = false;
  async append(records: LedgerRecord[]): Promise<number> {
    this.batchSizes.push(records.length);
    if (this.down || this.batchSizes.length > this.downAfter) {
      this.down = true;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    }
    if (records.some((r) => JSON.stringify(r).includes('\\u0000')))
      throw Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' });
    return this.inner.append(records);
  }
  query(f: LedgerFilter, g: LedgerGroupBy): Promise<LedgerRow[]> {
    return this.inner.query(f, g);
  }
  count(f: LedgerFilter): Promise<number> {
    return this.inner.count(f);
  }
}

/** A logger that keeps each error message with its fields. */
function keepErrors(): { logger: StateLogger; errors: Array<{ o: object; m: string }> } {
  const errors: Array<{ o: object; m: string }> = [];
  return { logger: { warn: () => undefined, error: (o, m) => void errors.push({ o, m }) }, errors };
}

describe('LedgerWriter', () => {
  it('batches by size and flushes the rest on close', async () => {
    const store = new FlakyStore(0);
    const w = new LedgerWriter(store, { maxBatch: 10, flushIntervalMs: 60_000 });
    for (let i = 0; i < 25; i++) assert.equal(w.write(rec(`r${i}`)), true);
    const stats = await w.close();
    assert.equal(await store.count({}), 25);
    assert.ok(store.batchSizes.every((n) => n <= 10));
    assert.deepEqual([stats.written, stats.dropped, stats.buffered], [25, 0, 0]);
    assert.equal(w.write(rec('late')), false);
    assert.equal(w.stats().dropped, 1);
  });

  it('retries failed appends without duplicating (idempotent ids), reporting each failure', async () => {
    const store = new FlakyStore(2, true);
    const events: StateErrorEvent[] = [];
    const w = new LedgerWriter(store, {
      flushIntervalMs: 60_000,
      retryBaseMs: 5,
      hooks: { onError: (e) => events.push(e) },
      store: 'postgres',
    });
    for (let i = 0; i < 5; i++) w.write(rec(`r${i}`));
    await assert.rejects(w.flush());
    const stats = await w.close(5000);
    assert.equal(await store.count({}), 5);
    assert.equal(stats.failedFlushes, 2);
    assert.equal(stats.written, 0); // the ambiguous first attempt wrote them
    assert.equal(stats.duplicates, 5);
    assert.deepEqual(
      events.map((e) => [e.store, e.port, e.mode]),
      [
        ['postgres', 'ledger', 'retry'],
        ['postgres', 'ledger', 'retry'],
      ],
    );
  });

  it('bounds the buffer: high water signals, past the cap records are dropped and counted', async () => {
    const store = new FlakyStore(1000);
    const errors: string[] = [];
    const w = new LedgerWriter(store, {
      flushIntervalMs: 60_000,
      maxBatch: 1000,
      maxBuffer: 10,
      highWater: 5,
      logger: { warn: () => undefined, error: (_o, m) => errors.push(m) },
    });
    const accepted = Array.from({ length: 12 }, (_, i) => w.write(rec(`r${i}`)));
    assert.deepEqual(accepted, [
      true,
      true,
      true,
      true,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    assert.equal(w.stats().buffered, 10);
    assert.equal(w.stats().dropped, 2);
    const stats = await w.close(50);
    assert.equal(stats.dropped, 12);
    assert.ok(errors.some((m) => m.includes('closed with unwritten records')));
  });

  it('drops an invalid record instead of blocking the queue', async () => {
    const store = new FlakyStore(0);
    const w = new LedgerWriter(store, { flushIntervalMs: 60_000 });
    assert.equal(w.write({ ...rec('bad'), tokens_in: Number.NaN }), false);
    w.write(rec('good'));
    const stats = await w.close();
    assert.deepEqual([stats.written, stats.dropped], [1, 1]);
  });

  it('a record the store refuses for its data is dropped alone: the rest of its batch and every batch behind it are written (review, 2026-12-14)', async () => {
    // Before: the batch holding a key id with a NUL failed on Postgres and was retried for ever,
    // and no record behind it, of any tenant, was ever written.
    const store = new PickyStore();
    const { logger, errors } = keepErrors();
    let lost = 0;
    const w = new LedgerWriter(store, {
      flushIntervalMs: 60_000,
      maxBatch: 3,
      logger,
      store: 'postgres',
      hooks: { onLedgerLost: (n) => (lost += n) },
    });
    for (let i = 0; i < 7; i++) w.write(i === 1 ? { ...rec('r1'), key_id: 'ci\u0000key' } : rec(`r${i}`));
    await w.flush();
    assert.equal(await store.count({}), 6);
    assert.deepEqual(
      (await store.inner.query({}, 'key')).map((r) => r.requests),
      [6],
    );
    const stats = w.stats();
    assert.deepEqual([stats.buffered, stats.written, stats.dropped, stats.refused], [0, 6, 1, 1]);
    assert.equal(lost, 1, 'counted in portico_ledger_dropped_total');
    const refused = errors.filter((e) => e.m.includes('refused'));
    assert.equal(refused.length, 1, 'logged once');
    assert.equal((refused[0]?.o as { id?: string }).id, 'r1');
    // Only the refused batch went one record at a time: [3 refused] + 3 singles, then 3 and 1.
    assert.deepEqual(store.batchSizes, [3, 1, 1, 1, 3, 1]);
    await w.flush();
    assert.equal(store.batchSizes.length, 6, 'nothing left to retry');
    await w.close();
  });

  it('a store that goes down while a refused batch is split keeps the rest buffered and retries it whole', async () => {
    const store = new PickyStore();
    store.downAfter = 2; // the batch (refused), the first single, then down
    const w = new LedgerWriter(store, {
      flushIntervalMs: 60_000,
      maxBatch: 4,
      retryBaseMs: 1,
      retryMaxMs: 1,
    });
    w.write(rec('a'));
    w.write({ ...rec('b'), tenant: 'x\u0000' });
    w.write(rec('c'));
    await assert.rejects(w.flush(), /ECONNREFUSED/);
    assert.deepEqual([w.stats().buffered, w.stats().written, w.stats().refused], [2, 1, 0]);
    store.down = false;
    store.downAfter = Infinity;
    await new Promise((r) => setTimeout(r, 5));
    await w.flush();
    assert.equal(await store.count({}), 2);
    assert.deepEqual([w.stats().buffered, w.stats().refused], [0, 1]);
    await w.close();
  });

  it('every store refuses a record it cannot hold with StateInvalidInputError; the writer drops it alone', async () => {
    const store = new MemoryLedgerStore();
    await assert.rejects(
      store.append([rec('ok'), { ...rec('big'), tokens_in: 3e9 }]),
      StateInvalidInputError,
    );
    assert.equal(await store.count({}), 0, 'refused before anything is stored');
    const w = new LedgerWriter(store, { flushIntervalMs: 60_000 });
    w.write(rec('a'));
    w.write({ ...rec('big'), tokens_in: 3e9 });
    w.write({ ...rec('surrogate'), model: '\ud800' });
    w.write(rec('b'));
    await w.flush();
    assert.equal(await store.count({}), 2);
    assert.equal(w.stats().refused, 2);
    await w.close();
  });

  it('tells a refusal for the data from a store failure', () => {
    const coded = (code: string): Error => Object.assign(new Error(code), { code });
    for (const e of [
      new StateInvalidInputError('key_id', 'key_id must be valid Unicode text'),
      coded('22021'), // Postgres: invalid byte sequence (a NUL)
      coded('22003'), // Postgres: numeric value out of range
      coded('23502'), // Postgres: not-null violation
      coded('SQLITE_CONSTRAINT_NOTNULL'),
      coded('SQLITE_MISMATCH'),
      coded('SQLITE_TOOBIG'),
    ])
      assert.equal(isRefusedData(e), true, String(e));
    for (const e of [
      new Error('db down'),
      new StateUnavailableError('postgres', 'down'),
      coded('ECONNREFUSED'),
      coded('57P01'), // Postgres: admin shutdown
      coded('53300'), // Postgres: too many connections
      coded('40001'), // Postgres: serialization failure
      coded('SQLITE_BUSY'),
      coded('SQLITE_FULL'),
      coded('SQLITE_IOERR_WRITE'),
      new TypeError('x is not a function'),
      undefined,
    ])
      assert.equal(isRefusedData(e), false, String(e));
  });
});
