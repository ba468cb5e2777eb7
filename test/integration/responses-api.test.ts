/**
 * The Responses API (POST/GET/DELETE /v1/responses) with the official `openai` SDK against the
 * gateway: the in-process simulator (echo, so what reached the backend is visible), the simulator
 * over HTTP behind the OpenAI-compatible adapter (it records what it received) and a fake
 * Anthropic upstream. Streaming event order, previous_response_id chaining, tool round trips,
 * per-tenant isolation of stored responses, DELETE, unsupported parameters, quotas.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import {
  ACME_KEY,
  ACME_PROMPT,
  CLOSED_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
import { startFakeAnthropic } from '../clients/support/fake-anthropic.js';

const FRUGAL_KEY = 'sk-test-frugal';

/** The body of the last chat request the HTTP simulator received (health probes are GETs in between). */
function lastChat(sim: TestSim): unknown {
  return sim.received.filter((r) => r.method === 'POST' && r.path.endsWith('/chat/completions')).at(-1)?.body;
}

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

describe('Responses API with the openai SDK', () => {
  let sim: TestSim;
  let anthropic: Awaited<ReturnType<typeof startFakeAnthropic>>;
  let gw: TestGateway;
  let acme: OpenAI;
  let closed: OpenAI;

  before(async () => {
    sim = await startTestSim({ sim: { ttft_ms: 0, itl_ms: 0 } });
    anthropic = await startFakeAnthropic();
    const base = demoConfig();
    const tenants = base.tenants as Array<Record<string, unknown>>;
    for (const t of tenants) delete t.allowed_models;
    tenants.push({
      id: 'frugal',
      display_name: 'Frugal',
      api_keys: [{ value: FRUGAL_KEY }],
      quota: { daily_requests: 1 },
    });
    gw = await startTestGateway({
      ...base,
      tenants,
      models: {
        default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] },
        lorem: { backends: [{ id: 'sim-lorem', provider: 'sim', sim: { output_tokens: 12 } }] },
        cut: {
          backends: [
            {
              id: 'sim-cut',
              provider: 'sim',
              sim: { output_tokens: 20, faults: { disconnect_rate: 1, disconnect_after_chunks: 3 } },
            },
          ],
          retry: { attempts: 1 },
        },
        oai: {
          backends: [
            { id: 'oai', provider: 'openai', base_url: sim.baseURL, api_key: 'sk-up', model: 'up-model' },
          ],
        },
        claude: {
          backends: [
            {
              id: 'claude',
              provider: 'anthropic',
              base_url: anthropic.url,
              api_key: 'sk-ant',
              model: 'claude-x',
            },
          ],
        },
      },
    });
    acme = new OpenAI({ baseURL: gw.baseURL, apiKey: ACME_KEY, maxRetries: 0 });
    closed = new OpenAI({ baseURL: gw.baseURL, apiKey: CLOSED_KEY, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await sim.close();
    await anthropic.close();
  });

  it('responses.create: string input and instructions go through the tenant prompt to the backend', async () => {
    const r = await acme.responses.create({
      model: 'default',
      input: 'Say hello.',
      instructions: 'Be brief.',
    });
    assert.match(r.id, /^resp_[0-9a-f]{32}$/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'default');
    assert.equal(r.output[0]?.type, 'message');
    // The echo simulator answers with what it received: tenant prompt, instructions, input.
    assert.ok(r.output_text.includes(ACME_PROMPT), r.output_text);
    assert.ok(r.output_text.includes('Be brief.'));
    assert.ok(r.output_text.includes('Say hello.'));
    assert.ok((r.usage?.input_tokens ?? 0) > 0 && (r.usage?.output_tokens ?? 0) > 0);
    assert.equal(r.usage?.total_tokens, (r.usage?.input_tokens ?? 0) + (r.usage?.output_tokens ?? 0));
  });

  it('item-list input with input_text parts, temperature, max_output_tokens and metadata reach the upstream', async () => {
    const r = await acme.responses.create({
      model: 'oai',
      input: [
        { role: 'developer', content: 'Answer in French.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Say hello.' }] },
      ],
      temperature: 0.3,
      top_p: 0.9,
      max_output_tokens: 40,
      metadata: { run: 'r1' },
      user: 'u-1',
    });
    assert.deepEqual(r.metadata, { run: 'r1' });
    assert.equal(r.max_output_tokens, 40);
    const body = lastChat(sim) as Record<string, unknown>;
    assert.equal(body.temperature, 0.3);
    assert.equal(body.top_p, 0.9);
    assert.equal(body.max_tokens ?? body.max_completion_tokens, 40);
    assert.equal(body.user, 'u-1');
    const messages = body.messages as Array<{ role: string; content: string }>;
    assert.ok(messages.some((m) => m.role === 'system' && m.content === 'Answer in French.'));
    assert.equal(messages.at(-1)?.content, 'Say hello.');
    assert.equal(body.metadata, undefined, 'metadata stays in Portico');
  });

  it('streams the typed events in the order the SDK expects, with a sequence number on each', async () => {
    const res = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'lorem', input: 'Say hello.', stream: true }),
    });
    assert.equal(res.status, 200);
    const events = (await res.text())
      .split('\n\n')
      .filter((b) => b.trim() !== '')
      .map((b) => {
        const ev = /^event: (.+)$/m.exec(b)?.[1];
        const data = JSON.parse(/^data: (.+)$/m.exec(b)?.[1] ?? 'null') as {
          type: string;
          sequence_number: number;
        };
        assert.equal(ev, data.type, 'the SSE event name is the event type');
        return data;
      });
    events.forEach((e, i) => assert.equal(e.sequence_number, i));
    const types = events
      .map((e) => e.type)
      .filter((t, i, a) => t !== 'response.output_text.delta' || a[i - 1] !== t);
    assert.deepEqual(types, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const done = events.at(-1) as unknown as { response: OpenAI.Responses.Response };
    assert.equal(done.response.status, 'completed');
    assert.ok((done.response.usage?.total_tokens ?? 0) > 0);
  });

  it('a stream cut mid-way ends with error then response.failed, numbering unbroken; nothing is stored', async () => {
    const res = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'cut', input: 'Say hello.', stream: true }),
    });
    assert.equal(res.status, 200);
    const events = (await res.text())
      .split('\n\n')
      .filter((b) => b.trim() !== '')
      .map((b) => JSON.parse(/^data: (.+)$/m.exec(b)?.[1] ?? 'null') as Record<string, unknown>);
    events.forEach((e, i) => assert.equal(e.sequence_number, i));
    assert.equal(events[0]?.type, 'response.created');
    assert.ok(
      events.some((e) => e.type === 'response.output_text.delta'),
      'some text came first',
    );
    const [err, failed] = events.slice(-2);
    assert.equal(err?.type, 'error');
    assert.equal(typeof err?.message, 'string');
    assert.equal(failed?.type, 'response.failed');
    const resp = failed?.response as { id: string; status: string; error: { code: string } | null };
    assert.equal(resp.status, 'failed');
    assert.ok(resp.error?.code);
    await assert.rejects(acme.responses.retrieve(resp.id), OpenAI.NotFoundError);
    // The SDK's stream helper surfaces it as an error.
    await assert.rejects(acme.responses.stream({ model: 'cut', input: 'Say hello.' }).finalResponse());
  });

  for (const model of ['lorem', 'oai', 'claude']) {
    it(`responses.stream() on ${model}: deltas add up to the final response, usage reported`, async () => {
      const stream = acme.responses.stream({ model, input: 'Say hello.' });
      let text = '';
      stream.on('response.output_text.delta', (e) => {
        text += e.delta;
      });
      const final = await stream.finalResponse();
      assert.ok(text.length > 0);
      assert.equal(text, final.output_text);
      assert.ok((final.usage?.total_tokens ?? 0) > 0);
      // Stored when streamed too.
      assert.equal((await acme.responses.retrieve(final.id)).output_text, text);
    });
  }

  it('tools: function_call out, function_call_output back (previous_response_id), streamed arguments', async () => {
    const first = await acme.responses.create({
      model: 'oai',
      input: 'Use get_weather for Paris.',
      tools: [weather],
      tool_choice: 'required',
    });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call && call.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.equal(typeof JSON.parse(call.arguments), 'object');
    const sent = lastChat(sim) as { tools?: unknown[]; tool_choice?: unknown };
    assert.equal(sent.tools?.length, 1);
    assert.equal(sent.tool_choice, 'required');

    const second = await acme.responses.create({
      model: 'oai',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temperature_c":18}' }],
      tools: [weather],
    });
    assert.ok(second.output_text.length > 0);
    assert.equal(second.previous_response_id, first.id);
    const msgs = (lastChat(sim) as { messages: Array<Record<string, unknown>> }).messages;
    const assistant = msgs.find((m) => m.role === 'assistant') as { tool_calls: Array<{ id: string }> };
    assert.equal(assistant.tool_calls[0]?.id, call.call_id);
    assert.deepEqual(msgs.at(-1), {
      role: 'tool',
      tool_call_id: call.call_id,
      content: '{"temperature_c":18}',
    });

    // Streamed: output_item.added (function_call), arguments deltas, arguments done.
    const stream = acme.responses.stream({
      model: 'oai',
      input: 'Use get_weather.',
      tools: [weather],
      tool_choice: 'required',
    });
    const seen: string[] = [];
    let args = '';
    stream.on('event', (e) => seen.push(e.type));
    stream.on('response.function_call_arguments.delta', (e) => {
      args += e.delta;
    });
    const final = await stream.finalResponse();
    const fc = final.output.find((o) => o.type === 'function_call');
    assert.ok(fc && fc.type === 'function_call');
    assert.equal(fc.arguments, args);
    assert.ok(seen.includes('response.function_call_arguments.done'));
    assert.ok(
      seen.indexOf('response.output_item.added') < seen.indexOf('response.function_call_arguments.delta'),
    );
  });

  it('previous_response_id replays the conversation; input_items lists the request input', async () => {
    const first = await acme.responses.create({ model: 'default', input: 'My name is Zed.' });
    const second = await acme.responses.create({
      model: 'default',
      previous_response_id: first.id,
      input: 'What is my name?',
    });
    // The echo backend saw the first turn, its answer, and the new question.
    assert.ok(second.output_text.includes('My name is Zed.'));
    assert.ok(second.output_text.includes('What is my name?'));
    const items = await acme.responses.inputItems.list(second.id);
    assert.equal(items.data.length, 1);
    const item = items.data[0] as { type: string; content: Array<{ text: string }> };
    assert.equal(item.content[0]?.text, 'What is my name?');
  });

  it('stored responses are per tenant: another tenant gets 404 on GET, DELETE and previous_response_id', async () => {
    const r = await acme.responses.create({ model: 'default', input: 'secret of acme' });
    await assert.rejects(closed.responses.retrieve(r.id), OpenAI.NotFoundError);
    await assert.rejects(closed.responses.delete(r.id), OpenAI.NotFoundError);
    await assert.rejects(
      closed.responses.create({ model: 'default', previous_response_id: r.id, input: 'and?' }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.param === 'previous_response_id',
    );
    // Still there for its owner; an item reference from another tenant does not resolve either.
    assert.equal((await acme.responses.retrieve(r.id)).id, r.id);
    const itemId = r.output[0]?.id ?? '';
    await assert.rejects(
      closed.responses.create({ model: 'default', input: [{ type: 'item_reference', id: itemId }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'input[0].id',
    );
    const viaRef = await acme.responses.create({
      model: 'default',
      input: [
        { type: 'item_reference', id: itemId },
        { role: 'user', content: 'next' },
      ],
    });
    assert.ok(viaRef.output_text.includes(r.output_text.slice(0, 20)));
  });

  it('DELETE removes a stored response; store:false is never stored; bad ids are 404s', async () => {
    const r = await acme.responses.create({ model: 'default', input: 'delete me' });
    await acme.responses.delete(r.id);
    await assert.rejects(acme.responses.retrieve(r.id), OpenAI.NotFoundError);
    await assert.rejects(acme.responses.delete(r.id), OpenAI.NotFoundError);
    const unstored = await acme.responses.create({ model: 'default', input: 'x', store: false });
    assert.equal((unstored as unknown as { store: boolean }).store, false);
    await assert.rejects(acme.responses.retrieve(unstored.id), OpenAI.NotFoundError);
    for (const id of ['resp_nope', 'x'.repeat(90)])
      await assert.rejects(acme.responses.retrieve(id), OpenAI.NotFoundError);
    // Hostile path segments (NUL, a lone surrogate's UTF-8, a cut sequence): the edge's 400 for a
    // malformed path or a 404, OpenAI-shaped, never a 500.
    for (const seg of ['resp_%00', 'resp_%ED%A0%80', 'resp_%F0', 'resp_%EF%BF%BF'])
      for (const method of ['GET', 'DELETE']) {
        const res = await fetch(`${gw.baseURL}/responses/${seg}`, {
          method,
          headers: { authorization: `Bearer ${ACME_KEY}` },
        });
        assert.ok(res.status === 404 || res.status === 400, `${method} ${seg}: ${res.status}`);
        assert.equal(((await res.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
      }
  });

  it('text.format json_schema: responses.parse gives a validated object (sim and Anthropic)', async () => {
    const Weather = z.object({ city: z.string(), temperature_c: z.number() });
    for (const model of ['lorem', 'claude']) {
      const r = await acme.responses.parse({
        model,
        input: 'Weather in Paris as JSON.',
        text: { format: zodTextFormat(Weather, 'weather') },
      });
      assert.ok(r.output_parsed, model);
      Weather.parse(r.output_parsed);
    }
  });

  it('unsupported parameters are 400s naming the parameter, never dropped', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      [{ tools: [{ type: 'file_search', vector_store_ids: ['v'] }] }, 'tools[0].type'],
      [{ tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] }, 'tools[0].type'],
      [{ background: true }, 'background'],
      [{ reasoning: { effort: 'high' } }, 'reasoning'],
      [{ truncation: 'auto' }, 'truncation'],
      [{ include: ['file_search_call.results'] }, 'include[0]'],
      [{ conversation: 'conv_1' }, 'conversation'],
      [{ input: [{ type: 'reasoning', id: 'rs_1', summary: [] }] }, 'input[0].type'],
      [
        { input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] },
        'input[0].content[0].type',
      ],
      [{ input: 42 }, 'input'],
      [{ text: { format: { type: 'json_schema', name: 'x' } } }, 'text.format.schema'],
    ];
    for (const [extra, param] of cases) {
      const res = await fetch(`${gw.baseURL}/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', input: 'hi', ...extra }),
      });
      assert.equal(res.status, 400, JSON.stringify(extra));
      const body = (await res.json()) as { error: { param: string; type: string } };
      assert.equal(body.error.param, param, JSON.stringify(extra));
      assert.equal(body.error.type, 'invalid_request_error');
    }
  });

  it('hostile bodies are 400s (or answers), never 500s', async () => {
    const nested: unknown = JSON.parse('['.repeat(200) + ']'.repeat(200));
    const bodies: unknown[] = [
      null,
      [],
      'x',
      { model: 'default' },
      { model: 42, input: 'x' },
      { model: 'default', input: [null] },
      { model: 'default', input: [{}] },
      { model: 'default', input: [{ role: 'user' }] },
      { model: 'default', input: [{ role: 'user', content: [{}] }] },
      { model: 'default', input: [{ role: 'tool', content: 'x' }] },
      { model: 'default', input: [{ type: 'function_call' }] },
      { model: 'default', input: [{ type: 'function_call_output', call_id: 'c', output: 7 }] },
      { model: 'default', input: [{ type: 'item_reference', id: 'msg_\u0000' }] },
      { model: 'default', input: [{ type: 'item_reference', id: `msg_${'0'.repeat(32)}_0` }] },
      { model: 'default', input: nested },
      { model: 'default', input: 'x', tools: [{ type: 'function' }] },
      { model: 'default', input: 'x', tools: [{ type: 'function', name: 'f', parameters: 'no' }] },
      { model: 'default', input: 'x', tool_choice: 'required' },
      { model: 'default', input: 'x', text: { format: { type: 'yaml' } } },
      { model: 'default', input: 'x', metadata: { k: 1 } },
      { model: 'default', input: 'x', temperature: 'hot' },
      { model: 'default', input: 'x', max_output_tokens: -1 },
      { model: 'default', input: 'x', previous_response_id: 'resp_\ud800' },
      { model: 'default', input: 'x', previous_response_id: 7 },
      { model: 'default', input: 'nul \u0000 and \ud800', instructions: '\udc00' },
      { model: 'nope', input: 'x' },
    ];
    for (const b of bodies) {
      const res = await fetch(`${gw.baseURL}/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
      const text = await res.text();
      assert.ok(res.status < 500, `${JSON.stringify(b).slice(0, 80)} -> ${res.status} ${text.slice(0, 200)}`);
      if (res.status >= 400) assert.ok((JSON.parse(text) as { error: { type: string } }).error.type);
    }
  });

  it('quotas and auth apply: a spent quota is 429 insufficient_quota, a bad key 401', async () => {
    const frugal = new OpenAI({ baseURL: gw.baseURL, apiKey: FRUGAL_KEY, maxRetries: 0 });
    await frugal.responses.create({ model: 'default', input: 'one' });
    await assert.rejects(
      frugal.responses.create({ model: 'default', input: 'two' }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'insufficient_quota',
    );
    const nobody = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-nope', maxRetries: 0 });
    await assert.rejects(
      nobody.responses.create({ model: 'default', input: 'x' }),
      OpenAI.AuthenticationError,
    );
    await assert.rejects(
      nobody.responses.retrieve('resp_0123456789abcdef0123456789abcdef'),
      OpenAI.AuthenticationError,
    );
  });

  it('accounted in the usage ledger under its tenant and model', async () => {
    const before = gw.gateway.metrics.registry;
    await acme.responses.create({ model: 'lorem', input: 'count me' });
    const text = await before.metrics();
    assert.match(text, /route="responses"/);
    const state = gw.gateway.tenancy?.state;
    await state?.ledgerWriter.flush();
    assert.ok(((await state?.ledger.count({ tenant: 'acme-corp', model: 'lorem' })) ?? 0) > 0);
  });

  it('the response cache applies (deterministic request): the second answer is a hit with a new response id', async () => {
    const ask = () =>
      acme.responses.create({ model: 'lorem', input: 'cache me please', temperature: 0 }).withResponse();
    const first = await ask();
    const second = await ask();
    assert.equal(first.response.headers.get('x-portico-cache'), 'miss');
    assert.equal(second.response.headers.get('x-portico-cache'), 'hit');
    assert.equal(second.data.output_text, first.data.output_text);
    assert.notEqual(second.data.id, first.data.id);
  });

  it('answers without /v1 and with a trailing slash, like the other OpenAI routes', async () => {
    const headers = { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' };
    const res = await fetch(`${gw.url}/responses/`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model: 'default', input: 'hi' }),
    });
    assert.equal(res.status, 200);
    const { id } = (await res.json()) as { id: string };
    assert.equal((await fetch(`${gw.url}/responses/${id}`, { headers })).status, 200);
    assert.equal((await fetch(`${gw.url}/v1/responses/${id}/`, { headers })).status, 200);
    // input_items too (review: it was a 404 without /v1).
    for (const path of [
      `/v1/responses/${id}/input_items`,
      `/responses/${id}/input_items`,
      `/responses/${id}/input_items/`,
      `/responses/${id}/input_items?order=asc`,
    ]) {
      const items = await fetch(`${gw.url}${path}`, { headers });
      assert.equal(items.status, 200, path);
      assert.equal(((await items.json()) as { object: string }).object, 'list', path);
    }
  });

  it('the routes are in the OpenAPI document at /docs/json', async () => {
    const spec = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { security?: unknown }>>;
    };
    assert.ok(spec.paths['/v1/responses']?.post);
    assert.ok(spec.paths['/v1/responses/{id}']?.get);
    assert.ok(spec.paths['/v1/responses/{id}']?.delete);
    assert.ok(spec.paths['/v1/responses/{id}/input_items']?.get);
    assert.deepEqual(spec.paths['/v1/responses']?.post?.security, [{ tenantKey: [] }]);
  });
});
