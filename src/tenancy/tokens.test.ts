// The tokenizer's BPE tables load only when something needs them (its own process: node --test
// runs each file separately, so nothing else has loaded them here).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../config/load.js';
import { Gateway } from '../app.js';
import { createLogger } from '../telemetry/logger.js';
import { countMessages, countText, tokenizerLoaded } from './tokens.js';

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
});
