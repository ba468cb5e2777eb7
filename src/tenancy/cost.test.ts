import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cacheTokensOf, costUsd } from './cost.js';

describe('costUsd with prompt-cache prices', () => {
  const pricing = {
    input_per_million: 3,
    output_per_million: 15,
    cache_read_per_million: 0.3,
    cache_write_per_million: 3.75,
  };
  it('prices cached prompt tokens at the cache prices', () => {
    // 1000 prompt tokens of which 600 read from and 100 written to the cache; 200 completion.
    const usd = costUsd(pricing, 1000, 200, { read: 600, write: 100 });
    assert.equal(usd, (300 * 3 + 600 * 0.3 + 100 * 3.75 + 200 * 15) / 1e6);
  });
  it('without cache prices, cached tokens cost the input price', () => {
    const plain = { input_per_million: 3, output_per_million: 15 };
    assert.equal(costUsd(plain, 1000, 0, { read: 600, write: 100 }), costUsd(plain, 1000, 0));
  });
  it('reads the cache counts from an OpenAI-shaped usage', () => {
    assert.deepEqual(
      cacheTokensOf({
        prompt_tokens: 10,
        completion_tokens: 1,
        total_tokens: 11,
        prompt_tokens_details: { cached_tokens: 4, cache_creation_tokens: 3 },
      }),
      { read: 4, write: 3 },
    );
    assert.deepEqual(cacheTokensOf({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }), {
      read: 0,
      write: 0,
    });
  });
});
