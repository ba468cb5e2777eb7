import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, PRESET_NAMES, applyChatQuirks, presetHeaders, resolvePreset } from './presets.js';

describe('provider presets', () => {
  it('resolves every name and the aliases, case-insensitively', () => {
    for (const n of PRESET_NAMES) assert.equal(resolvePreset(n).name, n);
    assert.equal(resolvePreset('llama.cpp').name, 'llamacpp');
    assert.equal(resolvePreset(' OpenRouter ').name, 'openrouter');
    assert.throws(() => resolvePreset('nope'), /Unknown provider preset 'nope'.*vllm, llamacpp/);
  });

  it('has a parseable base URL and a protocol for each preset', () => {
    for (const p of Object.values(PRESETS)) {
      assert.doesNotThrow(() => new URL(p.baseUrl), p.name);
      assert.ok(p.protocol === 'openai' || p.protocol === 'anthropic');
      if (p.quirks.supportsRerank) assert.ok(p.quirks.rerankPath, `${p.name} rerankPath`);
    }
    assert.equal(resolvePreset('anthropic').protocol, 'anthropic');
  });

  it('builds auth and optional headers in each style', () => {
    assert.deepEqual(presetHeaders(resolvePreset('openai'), 'sk-1'), { authorization: 'Bearer sk-1' });
    assert.deepEqual(presetHeaders(resolvePreset('anthropic'), 'sk-ant'), {
      'anthropic-version': '2023-06-01',
      'x-api-key': 'sk-ant',
    });
    assert.deepEqual(
      presetHeaders(resolvePreset('openrouter'), 'k', { referer: 'https://example.com', title: 'Portico' }),
      {
        authorization: 'Bearer k',
        'http-referer': 'https://example.com',
        'x-title': 'Portico',
      },
    );
    assert.deepEqual(presetHeaders(resolvePreset('vllm'), undefined), {});
    assert.throws(() => presetHeaders(resolvePreset('openai'), undefined), /needs an api_key/);
    assert.throws(
      () => presetHeaders(resolvePreset('openrouter'), 'k', { referrer: 'x' }),
      /no optional header 'referrer'.*referer, title/,
    );
  });

  it('applies request quirks without mutating the input', () => {
    const req = { model: 'm', messages: [], stream: true, max_tokens: 50, top_k: 5 };
    const openai = applyChatQuirks(resolvePreset('openai').quirks, req);
    assert.deepEqual(openai, {
      model: 'm',
      messages: [],
      stream: true,
      max_completion_tokens: 50,
      stream_options: { include_usage: true },
    });
    assert.equal(req.max_tokens, 50, 'input untouched');
    const vllm = applyChatQuirks(resolvePreset('vllm').quirks, { ...req, stream: false });
    assert.deepEqual(vllm, { model: 'm', messages: [], stream: false, max_tokens: 50, top_k: 5 });
    const back = applyChatQuirks(resolvePreset('together').quirks, {
      model: 'm',
      messages: [],
      max_completion_tokens: 7,
    });
    assert.deepEqual(back, { model: 'm', messages: [], max_tokens: 7 });
  });
});
