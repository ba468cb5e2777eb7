import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mapAnthropicError, mapAnthropicStreamError } from './map-error.js';

const body = (type: string, message = 'm') => ({ type: 'error', error: { type, message } });

describe('mapAnthropicError', () => {
  const table: Array<[number, string, string, number]> = [
    [400, 'invalid_request_error', 'invalid_request', 400],
    [401, 'authentication_error', 'upstream_error', 502],
    [403, 'permission_error', 'upstream_error', 502],
    [402, 'billing_error', 'upstream_error', 502],
    [404, 'not_found_error', 'model_not_found', 404],
    [413, 'request_too_large', 'payload_too_large', 413],
    [429, 'rate_limit_error', 'rate_limit_exceeded', 429],
    [500, 'api_error', 'upstream_error', 502],
    [504, 'timeout_error', 'upstream_timeout', 504],
    [529, 'overloaded_error', 'upstream_unavailable', 503],
  ];
  for (const [status, type, code, httpStatus] of table) {
    it(`${status} ${type} -> ${code}`, () => {
      const e = mapAnthropicError(status, body(type), {}, 'b1');
      assert.equal(e.code, code);
      assert.equal(e.status, httpStatus);
      assert.match(e.message, /b1/);
    });
  }

  it('says a 401 is the operator key, not the client', () => {
    assert.match(
      mapAnthropicError(401, body('authentication_error', 'invalid x-api-key')).message,
      /operator.*api_key/,
    );
  });

  it('keeps retry-after (and adds retry-after-ms) on 429', () => {
    const e = mapAnthropicError(429, body('rate_limit_error'), { 'retry-after': '7' });
    assert.deepEqual(e.headers, { 'retry-after': '7', 'retry-after-ms': '7000' });
  });

  it('tells dispatch which backend failed with which status and retry-after (upstream)', () => {
    assert.deepEqual(mapAnthropicError(529, body('overloaded_error'), {}, 'b1').upstream, {
      backend: 'b1',
      class: 'status',
      status: 529,
    });
    assert.deepEqual(
      mapAnthropicError(429, body('rate_limit_error'), { 'retry-after': '7' }, 'b1').upstream,
      {
        backend: 'b1',
        class: 'status',
        status: 429,
        retryAfterMs: 7000,
      },
    );
    assert.equal(mapAnthropicStreamError(body('overloaded_error'), 'b1').upstream?.status, 529);
  });

  it('falls back on the status for non-JSON bodies', () => {
    assert.equal(mapAnthropicError(503, '<html>bad gateway</html>').code, 'upstream_unavailable');
    assert.equal(mapAnthropicError(404, '').code, 'model_not_found');
    assert.equal(mapAnthropicError(502, undefined).code, 'upstream_error');
  });

  it('maps stream error events by type', () => {
    assert.equal(mapAnthropicStreamError(body('overloaded_error')).code, 'upstream_unavailable');
    assert.equal(mapAnthropicStreamError(body('rate_limit_error')).code, 'rate_limit_exceeded');
    assert.equal(mapAnthropicStreamError(body('api_error')).code, 'upstream_error');
  });
});
