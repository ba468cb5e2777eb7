import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cacheKey } from './key.js';
import { ANTHROPIC_HEADERS } from '../providers/openai-types.js';

describe('cacheKey', () => {
  const base = { model: 'claude', temperature: 0, messages: [{ role: 'user', content: 'x' }] };

  it('leaves out what does not change the answer', () => {
    assert.equal(
      cacheKey('t', 'm', 'chat', base),
      cacheKey('t', 'm', 'chat', { ...base, user: 'u1', stream_options: { include_usage: true } }),
    );
  });

  it('keys the tenant, the model (variant) and the provider headers the request carries', () => {
    const a = cacheKey('t', 'm', 'chat', base);
    assert.notEqual(a, cacheKey('u', 'm', 'chat', base));
    assert.notEqual(a, cacheKey('t', 'm-variant', 'chat', base));
    // anthropic-beta rides on a symbol and goes upstream: it can change the answer (found in
    // review, 2026-12-07: the key was the same with and without it).
    const beta = { ...base, [ANTHROPIC_HEADERS]: { 'anthropic-beta': 'output-128k-2025-02-19' } };
    assert.notEqual(a, cacheKey('t', 'm', 'chat', beta));
    assert.equal(
      cacheKey('t', 'm', 'chat', beta),
      cacheKey('t', 'm', 'chat', {
        ...base,
        [ANTHROPIC_HEADERS]: { 'anthropic-beta': 'output-128k-2025-02-19' },
      }),
    );
  });
});
