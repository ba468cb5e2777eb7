import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  PRESETS,
  PRESET_NAMES,
  applyChatQuirks,
  presetHeaders,
  resolvePreset,
  stripAnthropicExtensions,
} from './presets.js';
import type { ChatCompletionRequest } from './openai-types.js';

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

describe('stripAnthropicExtensions', () => {
  it('removes thinking, thinking_blocks and cache_control before an OpenAI-protocol upstream', () => {
    const req: ChatCompletionRequest = {
      model: 'm',
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: [
        { role: 'system', content: [{ type: 'text', text: 's', cache_control: { type: 'ephemeral' } }] },
        { role: 'user', content: 'u' },
        {
          role: 'assistant',
          content: 'a',
          thinking_blocks: [{ type: 'thinking', thinking: 't', signature: 'x' }],
          tool_calls: [
            { id: 'c', type: 'function', function: { name: 'f', arguments: '{}' }, cache_control: {} },
          ],
        },
        { role: 'tool', tool_call_id: 'c', content: 'r', cache_control: { type: 'ephemeral' } },
      ],
      tools: [{ type: 'function', function: { name: 'f' }, cache_control: { type: 'ephemeral' } }],
    };
    const out = stripAnthropicExtensions(req);
    assert.deepEqual(out, {
      model: 'm',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 's' }] },
        { role: 'user', content: 'u' },
        {
          role: 'assistant',
          content: 'a',
          tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'c', content: 'r' },
      ],
      tools: [{ type: 'function', function: { name: 'f' } }],
    });
    assert.ok('thinking' in req, 'the caller’s request is not modified');
  });
  it('returns the same object when there is nothing to strip', () => {
    const req: ChatCompletionRequest = { model: 'm', messages: [{ role: 'user', content: 'u' }] };
    assert.equal(stripAnthropicExtensions(req), req);
  });
});
