/**
 * Native Responses API pass-through (`responses_api: native`): the body reaches a backend that
 * speaks the Responses API (a fake one on loopback that records what it receives), governed all
 * the same: tenant prompt as instructions, output cap, quotas, accounting from the backend's usage,
 * Portico's own ids (mapped to the backend's) so stored responses stay per tenant.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import {
  ACME_KEY,
  ACME_PROMPT,
  CLOSED_KEY,
  demoConfig,
  startTestGateway,
  type TestGateway,
} from '../support/gateway.js';

const FRUGAL_KEY = 'sk-test-frugal-native';

interface FakeResponses {
  url: string;
  received: Array<Record<string, unknown>>;
  close: () => Promise<void>;
}

/** A backend with its own /v1/responses: answers "native:<previous_response_id or none>". */
async function startFakeResponses(): Promise<FakeResponses> {
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true });
  const received: Array<Record<string, unknown>> = [];
  let n = 0;
  app.post('/v1/responses', async (req, reply) => {
    const body = req.body as Record<string, unknown>;
    received.push(body);
    n++;
    const id = `resp_up${n}`;
    const text = `native:${String(body.previous_response_id ?? 'none')}`;
    const message = {
      type: 'message',
      id: `msg_up${n}`,
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
    };
    const usage = {
      input_tokens: 11,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 7,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 18,
    };
    const response = (status: string, output: unknown[], u: unknown) => ({
      id,
      object: 'response',
      created_at: 1,
      status,
      model: String(body.model),
      output,
      usage: u,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      metadata: {},
      parallel_tool_calls: true,
      temperature: null,
      top_p: null,
      tool_choice: 'auto',
      tools: body.tools ?? [],
      text: { format: { type: 'text' } },
    });
    if (body.stream !== true) return response('completed', [message], usage);
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    let seq = 0;
    const send = (type: string, data: Record<string, unknown>): void => {
      reply.raw.write(
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`,
      );
    };
    send('response.created', { response: response('in_progress', [], null) });
    send('response.output_item.added', {
      output_index: 0,
      item: { ...message, status: 'in_progress', content: [] },
    });
    send('response.content_part.added', {
      item_id: message.id,
      output_index: 0,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
    });
    for (const piece of [text.slice(0, 4), text.slice(4)])
      send('response.output_text.delta', {
        item_id: message.id,
        output_index: 0,
        content_index: 0,
        delta: piece,
        logprobs: [],
      });
    send('response.output_text.done', {
      item_id: message.id,
      output_index: 0,
      content_index: 0,
      text,
      logprobs: [],
    });
    send('response.output_item.done', { output_index: 0, item: message });
    send('response.completed', { response: response('completed', [message], usage) });
    reply.raw.end();
    return reply;
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, received, close: () => app.close() };
}

describe('Responses API: native pass-through', () => {
  let up: FakeResponses;
  let gw: TestGateway;
  let acme: OpenAI;
  let closed: OpenAI;

  before(async () => {
    up = await startFakeResponses();
    const base = demoConfig();
    const tenants = base.tenants as Array<Record<string, unknown>>;
    for (const t of tenants) delete t.allowed_models;
    Object.assign(tenants[0] ?? {}, { max_tokens_cap: 200, default_max_tokens: 64 });
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
        native: {
          backends: [
            {
              id: 'up',
              provider: 'openai',
              base_url: `${up.url}/v1`,
              api_key: 'sk-up',
              model: 'up-model',
              responses_api: 'native',
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
    await up.close();
  });

  it('passes the body through (hosted tools too), with the tenant prompt, the output cap and Portico ids', async () => {
    const r = await acme.responses.create({
      model: 'native',
      input: 'Hello',
      instructions: 'Be brief.',
      tools: [{ type: 'web_search' }],
    });
    const sent = up.received.at(-1) ?? {};
    assert.equal(sent.model, 'up-model');
    assert.equal(sent.instructions, `${ACME_PROMPT}\n\nBe brief.`);
    assert.deepEqual(sent.tools, [{ type: 'web_search' }]);
    assert.equal(sent.max_output_tokens, 64, "the tenant's default_max_tokens");
    assert.match(r.id, /^resp_[0-9a-f]{32}$/);
    assert.notEqual(r.id, 'resp_up1');
    assert.equal(r.model, 'native');
    assert.match(r.output[0]?.id ?? '', /^msg_[0-9a-f]{32}_0$/);
    assert.equal(r.output_text, 'native:none');
    assert.equal(r.usage?.total_tokens, 18);
    await assert.rejects(
      acme.responses.create({ model: 'native', input: 'x', max_output_tokens: 500 }),
      (e: unknown) =>
        e instanceof OpenAI.BadRequestError &&
        e.param === 'max_output_tokens' &&
        e.code === 'max_tokens_exceeded',
    );
  });

  it('previous_response_id maps to the backend id, only for the tenant that owns it', async () => {
    const first = await acme.responses.create({ model: 'native', input: 'one' });
    const upstreamFirst = `resp_up${up.received.length}`;
    const second = await acme.responses.create({
      model: 'native',
      input: 'two',
      previous_response_id: first.id,
    });
    assert.equal(up.received.at(-1)?.previous_response_id, upstreamFirst);
    assert.equal(second.output_text, `native:${upstreamFirst}`);
    const calls = up.received.length;
    await assert.rejects(
      closed.responses.create({ model: 'native', input: 'x', previous_response_id: first.id }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.param === 'previous_response_id',
    );
    await assert.rejects(closed.responses.retrieve(first.id), OpenAI.NotFoundError);
    assert.equal(up.received.length, calls, 'refused before reaching the backend');
    // An item reference to the tenant's own item is mapped to the backend's item id.
    await acme.responses.create({
      model: 'native',
      input: [{ type: 'item_reference', id: first.output[0]?.id ?? '' }],
    });
    assert.deepEqual((up.received.at(-1)?.input as unknown[])[0], {
      type: 'item_reference',
      id: `msg_up${calls - 1}`,
    });
  });

  it('streams the backend events with Portico ids; the response is stored and retrievable', async () => {
    const stream = acme.responses.stream({ model: 'native', input: 'stream me' });
    let text = '';
    stream.on('response.output_text.delta', (e) => {
      text += e.delta;
    });
    const final = await stream.finalResponse();
    assert.equal(text, 'native:none');
    assert.match(final.id, /^resp_[0-9a-f]{32}$/);
    assert.equal((await acme.responses.retrieve(final.id)).output_text, 'native:none');
    assert.equal(up.received.at(-1)?.stream, true);
  });

  it("accounts the backend's usage; quotas apply", async () => {
    const state = gw.gateway.tenancy?.state;
    await state?.ledgerWriter.flush();
    const before = (await state?.ledger.query({ tenant: 'acme-corp', model: 'native' }, 'model')) ?? [];
    await acme.responses.create({ model: 'native', input: 'count' });
    await state?.ledgerWriter.flush();
    const after_ = (await state?.ledger.query({ tenant: 'acme-corp', model: 'native' }, 'model')) ?? [];
    const tokens = (rows: typeof after_): number => rows.reduce((s, r) => s + r.tokens_in, 0);
    assert.equal(tokens(after_) - tokens(before), 11);
    const frugal = new OpenAI({ baseURL: gw.baseURL, apiKey: FRUGAL_KEY, maxRetries: 0 });
    await frugal.responses.create({ model: 'native', input: 'one' });
    await assert.rejects(
      frugal.responses.create({ model: 'native', input: 'two' }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'insufficient_quota',
    );
  });
});
