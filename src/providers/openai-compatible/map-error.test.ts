import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mapUpstreamStatus } from './map-error.js';

describe('mapUpstreamStatus: retry hints', () => {
  const body = '{"error":{"message":"slow down"}}';

  it('retry-after is in seconds', () => {
    const e = mapUpstreamStatus('b', 429, body, { 'retry-after': '3' });
    assert.equal(e.upstream?.retryAfterMs, 3_000);
    assert.equal(e.headers['retry-after'], '3');
  });

  it('retry-after-ms is in milliseconds, and wins over retry-after', () => {
    const e = mapUpstreamStatus('b', 429, body, { 'retry-after-ms': '800', 'retry-after': '1' });
    assert.equal(e.upstream?.retryAfterMs, 800);
    assert.equal(e.headers['retry-after'], '1');
  });

  it('a retry-after-ms that is not a number is ignored', () => {
    const e = mapUpstreamStatus('b', 429, body, { 'retry-after-ms': 'soon', 'retry-after': '2' });
    assert.equal(e.upstream?.retryAfterMs, 2_000);
  });
});
