/** Registers the Anthropic Messages adapter with the provider conformance suite. */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createAnthropicProvider } from '../../../src/providers/anthropic/index.js';
import { defineProviderConformance } from '../provider-conformance.js';

defineProviderConformance({
  name: 'anthropic',
  protocol: 'anthropic',
  fixturesDir: fileURLToPath(new URL('../../fixtures/providers/anthropic/', import.meta.url)),
  create: (baseUrl) =>
    createAnthropicProvider({
      id: 'conformance-anthropic',
      baseUrl,
      apiKey: 'sk-ant-test',
      defaultMaxTokens: 1024,
      connections: 4,
    }),
  checkRequest(testCase, req) {
    assert.equal(req.headers['x-api-key'], 'sk-ant-test');
    assert.equal(req.headers['anthropic-version'], '2023-06-01');
    if (req.method !== 'POST') return;
    assert.equal(req.path, '/v1/messages');
    const body = req.body as Record<string, unknown>;
    if (testCase === 'multi-turn') {
      assert.equal(body['system'], 'You are terse.');
      assert.equal((body['messages'] as unknown[]).length, 3);
      assert.equal(body['temperature'], 0.2);
    }
    if (testCase === 'tool-call' || testCase === 'stream-tool-call') {
      assert.deepEqual(body['tool_choice'], { type: 'auto' });
      const tools = body['tools'] as Array<Record<string, unknown>>;
      assert.equal(tools[0]?.['name'], 'get_weather');
      assert.ok(tools[0]?.['input_schema']);
    }
    if (testCase === 'tool-result-turn') {
      const msgs = body['messages'] as Array<{ role: string; content: Array<Record<string, unknown>> }>;
      assert.equal(msgs[1]?.content[0]?.['type'], 'tool_use');
      assert.deepEqual(msgs[1]?.content[0]?.['input'], { location: 'Paris', unit: 'celsius' });
      assert.equal(msgs[2]?.role, 'user');
      assert.equal(msgs[2]?.content[0]?.['type'], 'tool_result');
      assert.equal(msgs[2]?.content[0]?.['tool_use_id'], 'call_1');
    }
    if (testCase.startsWith('stream-') || testCase === 'abort-mid-stream') assert.equal(body['stream'], true);
  },
});
