/** Registers the OpenAI-compatible adapter (vLLM, llama.cpp, Ollama, OpenAI, ...) with the provider conformance suite. */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { OpenAICompatibleProvider } from '../../../src/providers/openai-compatible/provider.js';
import { defineProviderConformance } from '../provider-conformance.js';

defineProviderConformance({
  name: 'openai-compatible',
  protocol: 'openai',
  fixturesDir: fileURLToPath(new URL('../../fixtures/providers/openai/', import.meta.url)),
  create: (baseUrl) =>
    new OpenAICompatibleProvider({
      id: 'conformance-openai',
      baseUrl,
      model: 'upstream-model',
      apiKey: 'sk-openai-test',
      forceIncludeUsage: true,
      connections: 4,
    }),
  checkRequest(testCase, req) {
    assert.equal(req.headers['authorization'], 'Bearer sk-openai-test');
    if (req.method !== 'POST') return;
    assert.equal(req.path, '/v1/chat/completions');
    const body = req.body as Record<string, unknown>;
    if (testCase === 'multi-turn') {
      const msgs = body['messages'] as Array<{ role: string }>;
      assert.equal(msgs[0]?.role, 'system');
      assert.equal(body['temperature'], 0.2);
    }
    if (testCase === 'tool-call' || testCase === 'stream-tool-call') {
      const tools = body['tools'] as Array<{ function: { name: string } }>;
      assert.equal(tools[0]?.function.name, 'get_weather');
    }
    if (testCase.startsWith('stream-') || testCase === 'abort-mid-stream') {
      assert.equal(body['stream'], true);
      assert.deepEqual(body['stream_options'], { include_usage: true });
    }
  },
});
