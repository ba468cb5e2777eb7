import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema } from '../config/schema.js';
import { capOutput, headerInt, modelMaxOutput, tokenNeed } from './admit.js';

const config = ConfigSchema.parse({
  admission: { default_output_tokens: 200, min_output_tokens: 16 },
  models: {
    http: { backends: [{ provider: 'vllm', base_url: 'http://127.0.0.1:8000/v1' }] },
    declared: { max_output_tokens: 4000, backends: [{ provider: 'sim' }] },
    engine: { backends: [{ provider: 'engine', model_file: 'm.gguf' }] },
    claude: { backends: [{ provider: 'anthropic', api_key: 'k', default_max_tokens: 1024 }] },
    mixed: {
      backends: [
        { provider: 'anthropic', api_key: 'k', default_max_tokens: 1024 },
        { provider: 'engine', model_file: 'm.gguf' },
      ],
    },
  },
});

describe('modelMaxOutput', () => {
  it("is the model's max_output_tokens, else the smallest its backends declare, else the admission default", () => {
    assert.equal(modelMaxOutput(config, 'declared'), 4000);
    assert.equal(modelMaxOutput(config, 'engine'), 512);
    assert.equal(modelMaxOutput(config, 'claude'), 1024);
    assert.equal(modelMaxOutput(config, 'mixed'), 512);
    assert.equal(modelMaxOutput(config, 'http'), 200);
    assert.equal(modelMaxOutput(config, 'unknown'), 200);
  });
});

describe('tokenNeed and capOutput', () => {
  it('the shortest useful answer is min_output_tokens, or the whole answer when that is shorter', () => {
    assert.deepEqual(tokenNeed(30, 500, config.admission), { prompt: 30, output: 500, minOutput: 16 });
    assert.deepEqual(tokenNeed(30, 5, config.admission), { prompt: 30, output: 5, minOutput: 5 });
    assert.deepEqual(tokenNeed(30, 0, config.admission), { prompt: 30, output: 0, minOutput: 0 });
  });

  it('caps the field(s) the client sent, else sets max_tokens; no cap leaves the request alone', () => {
    const none: { max_tokens?: number | null; max_completion_tokens?: number | null } = {};
    capOutput(none, undefined);
    assert.deepEqual(none, {});
    capOutput(none, 40);
    assert.deepEqual(none, { max_tokens: 40 });
    const mct = { max_completion_tokens: 100 };
    capOutput(mct, 40);
    assert.deepEqual(mct, { max_completion_tokens: 40 });
    const both = { max_tokens: 1000, max_completion_tokens: 30 };
    capOutput(both, 30);
    assert.deepEqual(both, { max_tokens: 30, max_completion_tokens: 30 });
    const explicitNull = { max_tokens: null };
    capOutput(explicitNull, 12);
    assert.deepEqual(explicitNull, { max_tokens: 12 });
  });
});

describe('headerInt', () => {
  it('writes a non-negative integer in plain notation, whatever the arithmetic gave', () => {
    assert.equal(headerInt(42), '42');
    assert.equal(headerInt(3.7), '3');
    assert.equal(headerInt(1e12), '1000000000000');
    assert.equal(headerInt(1e308), '9007199254740991');
    assert.equal(headerInt(Infinity), '9007199254740991');
    assert.equal(headerInt(-9223372036854778), '0');
    assert.equal(headerInt(Number.NaN), '0');
  });
});
