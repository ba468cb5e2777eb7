/**
 * Client compatibility: the official `openai` Node SDK, unchanged, against the gateway, on every
 * provider kind. The fake upstreams show what reached them.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { PROVIDER_COLUMNS } from '../../scripts/clients-table.js';
import { openAIResponsesCases } from './responses-api.cases.js';
import { ClientCases, KEY, MODELS, startSuite, type Suite } from './support/suite.js';

let s: Suite;
let client: OpenAI;
before(async () => {
  s = await startSuite();
  client = new OpenAI({ baseURL: s.baseURL, apiKey: KEY, maxRetries: 0 });
});
after(() => s.close());

const cases = new ClientCases('openai', 'openai (Node SDK, chat completions)');

const Weather = z.object({ city: z.string(), temperature_c: z.number(), conditions: z.array(z.string()) });

for (const p of PROVIDER_COLUMNS) {
  const model = MODELS[p];
  cases.case('chat.completions.create', p, async () => {
    const r = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Say hello.' }],
      user: null as unknown as string, // frameworks send unset fields as null
      temperature: null,
    });
    // openai-kind backends report the alias once issue 16's rewrite lands (engineer h16).
    if (p !== 'openai-compatible') assert.equal(r.model, model);
    assert.ok((r.choices[0]?.message.content ?? '').length > 0);
    assert.ok((r.usage?.total_tokens ?? 0) > 0);
  });

  cases.case('stream with usage', p, async () => {
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Say hello.' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage = 0;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      usage = c.usage?.total_tokens ?? usage;
    }
    assert.ok(text.length > 0);
    assert.ok(usage > 0);
  });

  cases.case('.parse() with zodResponseFormat', p, async () => {
    const r = await client.chat.completions.parse({
      model,
      messages: [{ role: 'user', content: 'Weather in Paris as JSON.' }],
      response_format: zodResponseFormat(Weather, 'weather'),
    });
    const parsed = r.choices[0]?.message.parsed;
    assert.ok(parsed, 'parsed output');
    Weather.parse(parsed);
    if (p === 'anthropic') {
      // Sent to Claude as a forced tool whose input schema is the requested one.
      const body = s.anthropic.last().body as { tools?: Array<{ name: string }>; tool_choice?: unknown };
      assert.ok(body.tools?.some((t) => t.name === 'weather'));
      assert.deepEqual(body.tool_choice, { type: 'tool', name: 'weather' });
    }
    if (p === 'openai-compatible') {
      const body = s.oai.received.at(-1)?.body as { response_format?: { type?: string } };
      assert.equal(body.response_format?.type, 'json_schema');
    }
  });

  cases.case('.stream() structured output', p, async () => {
    const stream = client.chat.completions.stream({
      model,
      messages: [{ role: 'user', content: 'Weather in Paris as JSON.' }],
      response_format: zodResponseFormat(Weather, 'weather'),
    });
    const final = await stream.finalChatCompletion();
    Weather.parse(final.choices[0]?.message.parsed);
  });

  cases.case('runTools() agent loop', p, async () => {
    let calls = 0;
    const runner = client.chat.completions.runTools({
      model,
      messages: [{ role: 'user', content: 'Use get_weather for Paris, then answer.' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather for a city',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
            function: (args: { city: string }) => {
              calls++;
              return { city: args.city, temperature_c: 18 };
            },
            parse: JSON.parse,
          },
        },
      ],
      max_tokens: 64,
    });
    const content = await runner.finalContent();
    assert.equal(calls, 1, 'the tool ran once and the loop ended');
    assert.ok((content ?? '').length > 0);
  });

  cases.case('legacy functions / function_call', p, async () => {
    const r = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Call get_time.' }],
      functions: [
        { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } },
      ],
      function_call: { name: 'get_time' },
    });
    const choice = r.choices[0];
    assert.equal(choice?.finish_reason, 'function_call');
    assert.equal(choice?.message.function_call?.name, 'get_time');
    assert.equal(typeof JSON.parse(choice?.message.function_call?.arguments ?? ''), 'object');
    assert.equal(choice?.message.tool_calls, undefined);
  });

  cases.case('models.retrieve', p, async () => {
    const m = await client.models.retrieve(model);
    assert.equal(m.id, model);
    assert.equal(m.object, 'model');
  });
}

cases.case('response_format json_object', 'sim', async () => {
  const r = await client.chat.completions.create({
    model: MODELS.sim,
    messages: [{ role: 'user', content: 'JSON please.' }],
    response_format: { type: 'json_object' },
  });
  assert.equal(typeof JSON.parse(r.choices[0]?.message.content ?? ''), 'object');
});
cases.case('response_format json_object', 'anthropic', async () => {
  const r = await client.chat.completions.create({
    model: MODELS.anthropic,
    messages: [{ role: 'user', content: 'JSON please.' }],
    response_format: { type: 'json_object' },
  });
  assert.equal(typeof JSON.parse(r.choices[0]?.message.content ?? ''), 'object');
});
cases.case('response_format json_object', 'openai-compatible', async () => {
  const r = await client.chat.completions.create({
    model: MODELS['openai-compatible'],
    messages: [{ role: 'user', content: 'JSON please.' }],
    response_format: { type: 'json_object' },
  });
  assert.equal(typeof JSON.parse(r.choices[0]?.message.content ?? ''), 'object');
});

cases.case('n, stop, logprobs', 'sim', async () => {
  const r = await client.chat.completions.create({
    model: MODELS.sim,
    messages: [{ role: 'user', content: 'Say hello.' }],
    n: 2,
    logprobs: true,
    top_logprobs: 3,
  });
  assert.equal(r.choices.length, 2);
  const lp = r.choices[0]?.logprobs?.content ?? [];
  assert.ok(lp.length > 0 && lp.every((t) => t.logprob <= 0 && t.top_logprobs.length === 3));
});
cases.case('n, stop, logprobs', 'openai-compatible', async () => {
  await client.chat.completions.create({
    model: MODELS['openai-compatible'],
    messages: [{ role: 'user', content: 'Say hello.' }],
    n: 2,
    stop: ['END'],
    logprobs: true,
    top_logprobs: 3,
  });
  const body = s.oai.received.at(-1)?.body as Record<string, unknown>;
  assert.equal(body.n, 2);
  assert.deepEqual(body.stop, ['END']);
  assert.equal(body.top_logprobs, 3);
});
cases.notApplicable(
  'n, stop, logprobs',
  'anthropic',
  'Claude has no n or logprobs: n > 1 is a 400; stop maps to stop_sequences',
);

cases.case('upstream 400 keeps param and code', 'openai-compatible', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: MODELS['openai-compatible'],
      messages: [{ role: 'user', content: 'x' }],
      // the simulator rejects this: it is not a JSON schema object
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', schema: 'no' as unknown as Record<string, unknown> },
      },
    }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'response_format.json_schema.schema',
  );
});

cases.notApplicable('upstream 400 keeps param and code', 'sim', 'in-process: no upstream error body');
cases.notApplicable(
  'upstream 400 keeps param and code',
  'anthropic',
  "Anthropic's errors carry no param or code; the type maps to the catalog",
);

openAIResponsesCases(cases, () => s);

cases.finish();
