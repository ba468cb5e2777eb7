// The tokenizer's BPE tables load only when something needs them (its own process: node --test
// runs each file separately, so nothing else has loaded them here).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../config/load.js';
import { Gateway } from '../app.js';
import { createLogger } from '../telemetry/logger.js';
import {
  countCacheStats,
  countMessages,
  countText,
  COUNT_CACHE_MIN_CHARS,
  tokenizerLoaded,
} from './tokens.js';
import { createRequire } from 'node:module';

async function gateway(tenant: Record<string, unknown>): Promise<Gateway> {
  const loaded = await buildConfig(
    {
      logging: { level: 'silent' },
      admin: { token: 'x' },
      state: { kind: 'memory' },
      tenants: [{ id: 't', api_keys: [{ value: 'sk-test-tokens' }], ...tenant }],
      models: { m: { backends: [{ provider: 'sim' }] } },
    },
    { env: {} },
  );
  return Gateway.create(loaded, { defaultMetrics: false, logger: createLogger('silent') });
}

describe('tokenizer loading', () => {
  it('a gateway without token limits or quotas does not load it', async () => {
    const gw = await gateway({});
    try {
      assert.equal(tokenizerLoaded(), false);
    } finally {
      await gw.close();
    }
  });

  it('a tenant with a tokens/min limit loads it at start-up, before any request', async () => {
    const gw = await gateway({ limits: { tokens_per_minute: 1000 } });
    try {
      assert.equal(tokenizerLoaded(), true);
    } finally {
      await gw.close();
    }
  });

  it('counts like the BPE it wraps, loading on first use', () => {
    assert.equal(countText(''), 0);
    assert.equal(countText('hello world'), 2);
    // 3 priming + 4 per message + the text
    assert.equal(countMessages([{ role: 'user', content: 'hello world' }]), 9);
  });

  it('counts a special-token marker in a text as the ordinary text it is, never refusing it', () => {
    const bpe = createRequire(import.meta.url)('gpt-tokenizer') as typeof import('gpt-tokenizer');
    // gpt-tokenizer's own default refuses such a text: the reason for counting ordinary text.
    assert.throws(() => bpe.countTokens('<|endoftext|>'), /Disallowed special token/);
    // As text, the marker is 7 tokens of o200k (as one special token it would be 1).
    assert.equal(countText('<|endoftext|>'), 7);
    assert.equal(
      countText('<|endoftext|>'),
      bpe.encode('<|endoftext|>', { disallowedSpecial: new Set() }).length,
    );
    const quoted = 'What do <|endoftext|> and <|endofprompt|> mean in a prompt?';
    assert.equal(countText(quoted), bpe.encode(quoted, { disallowedSpecial: new Set() }).length);
    assert.equal(
      countMessages([{ role: 'user', content: quoted }]),
      3 + 4 + bpe.encode(quoted, { disallowedSpecial: new Set() }).length,
    );
  });

  it('a text is counted once and then remembered, with the count the BPE gives; the tiniest texts are not kept', () => {
    const bpe = (createRequire(import.meta.url)('gpt-tokenizer') as typeof import('gpt-tokenizer'))
      .countTokens;
    const system =
      'You are a careful assistant for ACME. Answer with the design first, then the code. '.repeat(8);
    assert.ok(system.length >= COUNT_CACHE_MIN_CHARS);
    const before = countCacheStats();
    const first = countText(system);
    // An equal string that is another object (as JSON.parse makes it for every request).
    const again = countText(system.split('').join(''));
    const after = countCacheStats();
    assert.equal(first, bpe(system));
    assert.equal(again, first);
    assert.deepEqual([after.misses - before.misses, after.hits - before.hits], [1, 1]);
    const tiny = 'thanks!';
    assert.ok(tiny.length < COUNT_CACHE_MIN_CHARS);
    countText(tiny);
    countText(tiny);
    assert.deepEqual([countCacheStats().hits, countCacheStats().misses], [after.hits, after.misses]);
    // In a chat, every earlier message hits — short ones too; only the new turn is counted.
    const history = 'Earlier answer: '.padEnd(600, 'x');
    const earlier = 'and the queue?';
    const turn = (q: string) => [
      { role: 'system' as const, content: system },
      { role: 'user' as const, content: 'what about the database layer?' },
      { role: 'assistant' as const, content: history },
      { role: 'user' as const, content: q },
    ];
    const n1 = countMessages(turn('and the database?'));
    const mid = countCacheStats();
    const n2 = countMessages(turn('and the cache layer?'));
    const end = countCacheStats();
    // Three of the four texts were counted before; the new turn is one miss.
    assert.deepEqual([end.hits - mid.hits, end.misses - mid.misses], [3, 1]);
    assert.equal(n1 - countText('and the database?'), n2 - countText('and the cache layer?'));
    assert.equal(
      n1,
      3 +
        4 * 4 +
        bpe(system) +
        bpe('what about the database layer?') +
        bpe(history) +
        bpe('and the database?'),
    );
    assert.equal(countText(earlier), bpe(earlier));
  });
});
