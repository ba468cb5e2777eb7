/**
 * The small incompatibilities real SDKs trip on (issue 17 item 4), over real HTTP: null optional
 * fields, paths without /v1 and with a trailing slash, CORS, tenant-scoped GET /v1/models/{id},
 * legacy function calling streamed back in its own shape.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

let gw: TestGateway;
before(async () => {
  gw = await startTestGateway(
    demoConfig({
      server: {
        host: '127.0.0.1',
        port: 0,
        cors: { origins: ['https://app.example.com'], max_age_s: 900 },
      },
      models: {
        default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] },
        hidden: { backends: [{ id: 'sim-hidden', provider: 'sim' }] },
      },
    }),
  );
});
after(() => gw.close());

const auth = { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' };
const chatBody = { model: 'default', messages: [{ role: 'user', content: 'hi' }] };

describe('nullable optional fields', () => {
  it('accepts null for every optional field, top level and in messages', async () => {
    const body = {
      model: 'default',
      messages: [
        { role: 'user', content: 'hi', name: null },
        {
          role: 'assistant',
          content: 'hello',
          tool_calls: null,
          refusal: null,
          function_call: null,
          audio: null,
        },
        { role: 'user', content: 'again' },
      ],
      user: null,
      temperature: null,
      top_p: null,
      n: null,
      stop: null,
      max_tokens: null,
      max_completion_tokens: null,
      presence_penalty: null,
      frequency_penalty: null,
      logit_bias: null,
      logprobs: null,
      top_logprobs: null,
      seed: null,
      stream: null,
      stream_options: null,
      tools: null,
      tool_choice: null,
      parallel_tool_calls: null,
      response_format: null,
      metadata: null,
      store: null,
      service_tier: null,
    };
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const j = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    assert.match(j.choices[0]?.message.content ?? '', /\[user\] again/);
  });

  it('still rejects null where a value is required', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ model: null, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { param: string } }).error.param, 'model');
  });

  it('rejects an unknown response_format type, naming it', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ...chatBody, response_format: { type: 'yaml' } }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { param: string } }).error.param, 'response_format');
  });
});

describe('base URL forgiveness', () => {
  for (const path of ['/chat/completions', '/v1/chat/completions/', '/chat/completions/']) {
    it(`POST ${path} reaches chat completions`, async () => {
      const res = await fetch(`${gw.url}${path}`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify(chatBody),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { object: string }).object, 'chat.completion');
    });
  }
  it('the openai SDK works with a base URL without /v1', async () => {
    const client = new OpenAI({ baseURL: gw.url, apiKey: ACME_KEY, maxRetries: 0 });
    const r = await client.chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'x' }],
    });
    assert.equal(r.object, 'chat.completion');
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['default'],
    );
  });
  it('leaves other paths alone', async () => {
    const res = await fetch(`${gw.url}/chat/completions/extra`, {
      method: 'POST',
      headers: auth,
      body: '{}',
    });
    assert.equal(res.status, 404);
  });
});

describe('GET /v1/models/{id}', () => {
  it('answers a model the tenant may use', async () => {
    const res = await fetch(`${gw.baseURL}/models/default`, { headers: auth });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys((await res.json()) as object).sort(), [
      'created',
      'id',
      'object',
      'owned_by',
    ]);
  });
  it('a configured model the tenant may not use looks like an unknown one', async () => {
    const hidden = await fetch(`${gw.baseURL}/models/hidden`, { headers: auth });
    const unknown = await fetch(`${gw.baseURL}/models/nope`, { headers: auth });
    assert.equal(hidden.status, 404);
    assert.equal(unknown.status, 404);
    const a = (await hidden.json()) as { error: { code: string; message: string } };
    const b = (await unknown.json()) as { error: { code: string; message: string } };
    assert.equal(a.error.code, 'model_not_found');
    assert.equal(a.error.message.replace('hidden', 'X'), b.error.message.replace('nope', 'X'));
  });
  it('answers Anthropic clients in their shape', async () => {
    const res = await fetch(`${gw.baseURL}/models`, {
      headers: { ...auth, 'anthropic-version': '2023-06-01' },
    });
    const j = (await res.json()) as { data: Array<{ type: string; id: string }>; has_more: boolean };
    assert.equal(j.has_more, false);
    assert.deepEqual(
      j.data.map((m) => [m.type, m.id]),
      [['model', 'default']],
    );
  });
});

describe('CORS', () => {
  it('answers a preflight from an allowed origin, cacheable, without a key', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.equal(res.headers.get('access-control-max-age'), '900');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /authorization/i);
  });
  it('exposes the request id and rate-limit headers on the actual response', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { ...auth, origin: 'https://app.example.com' },
      body: JSON.stringify(chatBody),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim());
    for (const h of ['x-request-id', 'x-ratelimit-remaining-requests', 'retry-after'])
      assert.ok(exposed.includes(h), h);
  });
  it('gives an origin that is not listed no CORS headers', async () => {
    const res = await fetch(`${gw.baseURL}/models`, { headers: { ...auth, origin: 'https://evil.example' } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });
  it('is off by default (no origins): OPTIONS is not answered with CORS headers', async () => {
    const plain = await startTestGateway();
    try {
      const res = await fetch(`${plain.baseURL}/chat/completions`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
      });
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    } finally {
      await plain.close();
    }
  });
});

describe('legacy function calling', () => {
  it('streams function_call fragments and finish_reason function_call', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        ...chatBody,
        stream: true,
        functions: [
          { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } },
        ],
        function_call: { name: 'lookup' },
      }),
    });
    const text = await res.text();
    const chunks = text
      .split('\n\n')
      .filter((l) => l.startsWith('data: {'))
      .map(
        (l) =>
          JSON.parse(l.slice(6)) as {
            choices: Array<{ delta: Record<string, unknown>; finish_reason: string }>;
          },
      );
    const fc = chunks.map(
      (c) => c.choices[0]?.delta.function_call as { name?: string; arguments: string } | undefined,
    );
    assert.equal(fc.find((f) => f?.name)?.name, 'lookup');
    assert.deepEqual(JSON.parse(fc.map((f) => f?.arguments ?? '').join('')), { q: 'sim' });
    assert.ok(chunks.every((c) => c.choices[0]?.delta.tool_calls === undefined));
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'function_call');
  });
  it('maps role "function" results back to the call', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        model: 'default',
        messages: [
          { role: 'user', content: 'look it up' },
          { role: 'assistant', content: null, function_call: { name: 'lookup', arguments: '{"q":"x"}' } },
          { role: 'function', name: 'lookup', content: 'found it' },
        ],
        functions: [{ name: 'lookup', parameters: { type: 'object' } }],
      }),
    });
    assert.equal(res.status, 200);
    const j = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    assert.match(j.choices[0]?.message.content ?? '', /\[tool\] found it/);
  });
});
