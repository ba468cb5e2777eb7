import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LedgerWriter } from './ledger-writer.js';
import { MemoryLedgerStore } from './memory/catalog.js';
import type {
  LedgerFilter,
  LedgerGroupBy,
  LedgerRecord,
  LedgerRow,
  LedgerStore,
  StateErrorEvent,
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
});
