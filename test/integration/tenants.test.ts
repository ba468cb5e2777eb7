/**
 * Tenant endpoints from the seeds: the same question through /ask as two tenants reaches the
 * backend with each tenant's own system prompt (the echo simulator shows it); /info shows the
 * prompt in force; prompt policies; max_tokens cap; correlation ids propagate upstream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACME_KEY,
  ACME_PROMPT,
  CLOSED_KEY,
  CLOSED_PROMPT,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';

interface AskBody {
  answer: string;
  tenant: string;
  model: string;
  backend: string;
  request_id: string;
  correlation_id: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

async function post(
  url: string,
  key: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe('tenant endpoints', () => {
  let gw: TestGateway;
  let sim: TestSim;
  const question = 'How should we build a real-time collaboration platform?';

  before(async () => {
    sim = await startTestSim({ sim: { mode: 'echo' } });
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          {
            id: 'acme-corp',
            display_name: 'ACME Corp',
            company: 'ACME Corporation',
            system_prompt: ACME_PROMPT,
            allowed_models: ['default'],
            api_keys: [{ value: ACME_KEY }],
            max_tokens_cap: 100,
          },
          {
            id: 'closed-ai',
            display_name: 'Closed AI',
            system_prompt: CLOSED_PROMPT,
            prompt_policy: 'replace',
            allowed_models: ['default', 'remote'],
            api_keys: [{ value: CLOSED_KEY }],
          },
          { id: 'raw', system_prompt: 'never sent', prompt_policy: 'none', api_keys: [{ value: 'sk-raw' }] },
        ],
        models: {
          default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] },
          remote: { backends: [{ id: 'http-echo', provider: 'openai', base_url: sim.baseURL }] },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it('the same question gets each tenant its own system prompt', async () => {
    const a = (await (await post(`${gw.url}/ask`, ACME_KEY, { question, max_tokens: 80 })).json()) as AskBody;
    const c = (await (
      await post(`${gw.url}/ask`, CLOSED_KEY, { question, max_tokens: 80 })
    ).json()) as AskBody;
    assert.equal(a.tenant, 'acme-corp');
    assert.equal(c.tenant, 'closed-ai');
    assert.equal(a.answer, `[system] ${ACME_PROMPT}\n[user] ${question}`);
    assert.equal(c.answer, `[system] ${CLOSED_PROMPT}\n[user] ${question}`);
    assert.equal(a.model, 'default');
    assert.equal(a.backend, 'sim-echo');
    assert.match(a.request_id, /^req_[0-9a-f]{24}$/);
    assert.ok(a.usage.total_tokens > 0);
  });

  it('/info shows the tenant, its prompt, backends and endpoints', async () => {
    const res = await fetch(`${gw.url}/info`, { headers: { authorization: `Bearer ${ACME_KEY}` } });
    assert.equal(res.status, 200);
    const info = (await res.json()) as {
      tenant: string;
      name: string;
      company: string;
      system_prompt: string;
      models: Array<{ alias: string; backends: Array<{ id: string }> }>;
      endpoints: string[];
    };
    assert.equal(info.tenant, 'acme-corp');
    assert.equal(info.name, 'ACME Corp');
    assert.equal(info.company, 'ACME Corporation');
    assert.equal(info.system_prompt, ACME_PROMPT);
    assert.deepEqual(
      info.models.map((m) => m.alias),
      ['default'],
    );
    assert.equal(info.models[0]?.backends[0]?.id, 'sim-echo');
    // Every tenant endpoint the gateway serves (no team routes in this config), none of the admin API.
    assert.deepEqual([...info.endpoints].sort(), [
      'DELETE /v1/responses/{id}',
      'GET /health',
      'GET /info',
      'GET /v1/models',
      'GET /v1/models/{id}',
      'GET /v1/responses/{id}',
      'GET /v1/responses/{id}/input_items',
      'POST /ask',
      'POST /v1/chat/completions',
      'POST /v1/completions',
      'POST /v1/embeddings',
      'POST /v1/messages',
      'POST /v1/messages/count_tokens',
      'POST /v1/rerank',
      'POST /v1/responses',
    ]);
  });

  it('/info needs a key', async () => {
    const res = await fetch(`${gw.url}/info`);
    assert.equal(res.status, 401);
  });

  it('prompt policy replace drops the caller system message; none leaves messages untouched', async () => {
    const messages = [
      { role: 'system', content: 'caller says be terse' },
      { role: 'user', content: 'hello' },
    ];
    const replaced = (await (
      await post(`${gw.baseURL}/chat/completions`, CLOSED_KEY, { model: 'default', messages })
    ).json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(replaced.choices[0]?.message.content, `[system] ${CLOSED_PROMPT}\n[user] hello`);
    const untouched = (await (
      await post(`${gw.baseURL}/chat/completions`, 'sk-raw', { model: 'default', messages })
    ).json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(untouched.choices[0]?.message.content, '[system] caller says be terse\n[user] hello');
    const acme = (await (
      await post(`${gw.baseURL}/chat/completions`, ACME_KEY, { model: 'default', messages })
    ).json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(
      acme.choices[0]?.message.content,
      `[system] ${ACME_PROMPT}\n[system] caller says be terse\n[user] hello`,
    );
  });

  it('max_tokens above the tenant cap is a 400 naming the cap', async () => {
    const res = await post(`${gw.url}/ask`, ACME_KEY, { question: 'x', max_tokens: 101 });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; param: string; message: string } };
    assert.equal(body.error.code, 'max_tokens_exceeded');
    assert.equal(body.error.param, 'max_tokens');
    assert.match(body.error.message, /100/);
  });

  it('x-request-id on every response; X-Correlation-ID kept and propagated upstream', async () => {
    const res = await post(
      `${gw.baseURL}/chat/completions`,
      CLOSED_KEY,
      { model: 'remote', messages: [{ role: 'user', content: 'trace me' }] },
      { 'x-correlation-id': 'corr-test-001' },
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-correlation-id'), 'corr-test-001');
    const requestId = res.headers.get('x-request-id');
    assert.match(requestId ?? '', /^req_/);
    // The chat request, not a health probe that may have reached the simulator after it.
    const seen = sim.received.filter((r) => r.method === 'POST').at(-1);
    assert.equal(seen?.headers['x-correlation-id'], 'corr-test-001');
    assert.equal(seen?.headers['x-request-id'], requestId);
    const err = await fetch(`${gw.url}/nope`);
    assert.match(err.headers.get('x-request-id') ?? '', /^req_/);
    assert.equal(err.headers.get('x-correlation-id'), err.headers.get('x-request-id'));
  });

  it('the upstream gets the upstream model name and the tenant prompt', async () => {
    await post(`${gw.baseURL}/chat/completions`, CLOSED_KEY, {
      model: 'remote',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const body = sim.received.at(-1)?.body as {
      model: string;
      messages: Array<{ role: string; content: string }>;
    };
    assert.equal(body.model, 'remote');
    assert.deepEqual(body.messages[0], { role: 'system', content: CLOSED_PROMPT });
  });
});
