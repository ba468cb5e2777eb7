/**
 * The usage API's time bounds (review, 2026-12-07): the "through the end of it" rule applied by
 * string length alone (a 7- or 10-digit epoch value got a month or a day added), an ISO time
 * without an offset was read in the server's time zone, and impossible dates rolled over.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseTime } from './admin.js';

describe('usage query times', () => {
  it('epoch milliseconds are exact, whatever their number of digits', () => {
    assert.deepEqual(parseTime('1000000', 'to'), { ms: 1_000_000 });
    assert.deepEqual(parseTime('1700000000', 'to'), { ms: 1_700_000_000 });
    assert.deepEqual(parseTime('1764547200000', 'to'), { ms: 1_764_547_200_000 });
  });

  it('a month or a day is UTC and says so (the route extends `to` through its end)', () => {
    assert.deepEqual(parseTime('2026-11', 'to'), { ms: Date.UTC(2026, 10, 1), unit: 'month' });
    assert.deepEqual(parseTime('2026-11-22', 'from'), { ms: Date.UTC(2026, 10, 22), unit: 'day' });
    assert.deepEqual(parseTime('2024-02-29', 'from'), { ms: Date.UTC(2024, 1, 29), unit: 'day' });
  });

  it('an ISO time needs its offset; impossible dates are refused, not rolled over', () => {
    assert.deepEqual(parseTime('2026-11-22T08:00:00Z', 'from'), { ms: Date.UTC(2026, 10, 22, 8) });
    assert.deepEqual(parseTime('2026-11-22T08:00:00+01:00', 'from'), { ms: Date.UTC(2026, 10, 22, 7) });
    for (const v of [
      '2026-11-22T00:00:00',
      '2026-11-31',
      '2025-02-29',
      '2026-13',
      '2026-00',
      'yesterday',
      '-5',
    ])
      assert.throws(
        () => parseTime(v, 'to'),
        (e: unknown) => (e as { code?: string; param?: string }).code === 'invalid_request',
        v,
      );
  });
});
