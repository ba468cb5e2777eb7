import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toPorticoError } from './errors.js';
import { StateInvalidInputError, StateUnavailableError } from '../state/errors.js';

describe('toPorticoError: state and framework errors', () => {
  it('an unreachable limit store is limits_unavailable, an unreachable key store state_unavailable (503, retryable)', () => {
    const limits = toPorticoError(new StateUnavailableError('redis', 'down'));
    assert.equal(limits.code, 'limits_unavailable');
    assert.equal(limits.status, 503);
    assert.equal(limits.headers['retry-after'], '1');
    const keys = toPorticoError(new StateUnavailableError('postgres', 'down'));
    assert.equal(keys.code, 'state_unavailable');
    assert.equal(keys.status, 503);
    assert.match(keys.message, /postgres/);
  });
  it('an input no store accepts is a 400 naming the field', () => {
    const pe = toPorticoError(
      new StateInvalidInputError('display_name', 'display_name must be valid Unicode text'),
    );
    assert.equal(pe.status, 400);
    assert.equal(pe.code, 'invalid_request');
    assert.equal(pe.param, 'display_name');
  });
  it('input too deep for the stack is a 400; other RangeErrors stay internal errors', () => {
    let overflow: unknown;
    const recurse = (n: number): number => recurse(n + 1) + 1;
    try {
      recurse(0);
    } catch (e) {
      overflow = e;
    }
    assert.equal(toPorticoError(overflow).status, 400);
    assert.equal(toPorticoError(new RangeError('Invalid array length')).code, 'internal_error');
  });
  it("router errors (bad %-escape, over-long segment) are the catalog's 400", () => {
    assert.equal(toPorticoError({ code: 'FST_ERR_BAD_URL', statusCode: 400 }).code, 'invalid_request');
    assert.match(toPorticoError({ code: 'FST_ERR_MAX_PARAM_LENGTH', statusCode: 400 }).message, /too long/);
  });
});
