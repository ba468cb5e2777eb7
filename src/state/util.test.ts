import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newId, newTimeId, timeIdMs, windowId } from './util.js';

describe('time-ordered ids', () => {
  it('are UUIDv7: version 7, RFC 4122 variant, the time in the first 48 bits, and sort by time', () => {
    const t = Date.UTC(2026, 11, 6, 22, 30);
    const ids = [t, t + 1, t + 1000, t + 86_400_000].map((ms) => newTimeId(ms));
    for (const [i, id] of ids.entries()) {
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(timeIdMs(id), [t, t + 1, t + 1000, t + 86_400_000][i]);
    }
    assert.deepEqual([...ids].sort(), ids);
    assert.notEqual(newTimeId(t), newTimeId(t), 'random below the millisecond');
  });

  it('other ids have no time', () => {
    assert.equal(timeIdMs(newId()), undefined);
    assert.equal(timeIdMs('not-an-id'), undefined);
    assert.equal(timeIdMs(''), undefined);
  });
});

describe('window ids', () => {
  it('name the UTC day and month of any time, across day, month and year boundaries', () => {
    const cases: Array<[number, string, string]> = [
      [Date.UTC(2026, 11, 31, 23, 59, 59, 999), '2026-12-31', '2026-12'],
      [Date.UTC(2027, 0, 1), '2027-01-01', '2027-01'],
      [Date.UTC(2027, 0, 1, 12), '2027-01-01', '2027-01'],
      [Date.UTC(2026, 1, 28, 23, 0), '2026-02-28', '2026-02'],
      [Date.UTC(2026, 2, 1, 0, 0, 0, 1), '2026-03-01', '2026-03'],
      [Date.UTC(2026, 11, 31, 23, 59, 59, 999), '2026-12-31', '2026-12'],
      [Date.UTC(1969, 11, 31, 12), '1969-12-31', '1969-12'],
      [0, '1970-01-01', '1970-01'],
    ];
    for (const [ms, day, month] of cases) {
      assert.equal(windowId('day', ms), day, new Date(ms).toISOString());
      assert.equal(windowId('month', ms), month, new Date(ms).toISOString());
    }
  });
});
