/**
 * The usage API's time bounds (review, 2026-12-07): the "through the end of it" rule applied by
 * string length alone (a 7- or 10-digit epoch value got a month or a day added), an ISO time
 * without an offset was read in the server's time zone, and impossible dates rolled over.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseTime, usageRange } from './admin.js';

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

describe('usage query range (review, 2026-12)', () => {
  it('an ISO time on a day that does not exist, or with an hour, minute or offset out of range, is refused', () => {
    for (const v of [
      '2026-02-30T00:00:00Z',
      '2026-04-31T12:00:00+02:00',
      '2026-01-01T24:00:00Z',
      '2026-01-01T12:60:00Z',
      '2026-01-01T12:00:60Z',
      '2026-01-01T12:00:00+24:00',
      '2026-13-01T00:00:00Z',
    ])
      assert.throws(
        () => parseTime(v, 'from'),
        (e: unknown) => (e as { code?: string; param?: string }).param === 'from',
        v,
      );
    assert.deepEqual(parseTime('2024-02-29T23:59:59.5Z', 'from'), {
      ms: Date.UTC(2024, 1, 29, 23, 59, 59, 500),
    });
  });

  it('a to day or month in 9999 runs through the end of 9999 (no upper bound)', () => {
    assert.deepEqual(usageRange(undefined, '9999-12-31'), {});
    assert.deepEqual(usageRange('2026-01', '9999-12'), { from: Date.UTC(2026, 0, 1) });
    assert.deepEqual(usageRange(undefined, '9999-11'), { to: Date.UTC(9999, 11, 1) });
  });

  it('from on or after the end of to is refused, naming both', () => {
    for (const [from, to] of [
      ['2026-12', '2026-01'],
      ['2026-11-23', '2026-11-22'],
      ['1000', '1000'],
      ['2026-11-22T08:00:00Z', '2026-11-22T07:00:00Z'],
    ] as const)
      assert.throws(
        () => usageRange(from, to),
        (e: unknown) => {
          const err = e as { code?: string; param?: string; message: string };
          assert.equal(err.code, 'invalid_request');
          assert.equal(err.param, 'from');
          assert.match(err.message, new RegExp(`from="${from}" is not before to="${to}"`));
          return true;
        },
      );
    // A to day or month includes all of it.
    assert.deepEqual(usageRange('2026-11', '2026-11'), {
      from: Date.UTC(2026, 10, 1),
      to: Date.UTC(2026, 11, 1),
    });
    assert.deepEqual(usageRange('2026-11-22', '2026-11-22'), {
      from: Date.UTC(2026, 10, 22),
      to: Date.UTC(2026, 10, 23),
    });
  });
});
