import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkDate, exactSum } from './tenants.js';
import { UsageError } from './common.js';

describe('usage report helpers', () => {
  it('totals are exact: no float noise, no rounding', () => {
    assert.equal(String(exactSum([0.0001, 0.00005915])), '0.00015915');
    assert.equal(exactSum([0.1, 0.2]), 0.3);
    assert.equal(exactSum([0.00000001, 0.00000002]), 0.00000003);
    assert.equal(exactSum([]), 0);
  });

  it('dates are checked in the words the user typed', () => {
    assert.throws(
      () => checkDate('--month', '2026-13', true),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(
          e.message,
          '--month 2026-13: there is no month 13 (months are 01 to 12); use YYYY-MM, e.g. 2026-11',
        );
        return true;
      },
    );
    assert.throws(() => checkDate('--month', 'November', true), /--month November: use YYYY-MM/);
    assert.throws(() => checkDate('--month', '2026-11-02', true), /use YYYY-MM, e.g. 2026-11/);
    assert.throws(
      () => checkDate('--from', '2026-02-30'),
      /--from 2026-02-30: 2026-02 has no day 30 \(it has 28 days\)/,
    );
    assert.doesNotThrow(() => checkDate('--from', '2028-02-29'));
    assert.doesNotThrow(() => checkDate('--to', '2026-12'));
    assert.doesNotThrow(() => checkDate('--month', '2026-01', true));
  });
});
