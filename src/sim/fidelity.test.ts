/**
 * Simulator fidelity (issue 17 item 5): n, stop, logprobs, response_format (valid JSON; for a JSON
 * schema, an object that validates against it — checked with ajv), and tool calls only after a
 * user turn so agent loops end.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { z } from 'zod';
import { Simulator } from './simulator.js';
import { cutAtStop, sampleFromSchema, tokenLogprobs, wordSource } from './generate.js';
import type { ChatCompletionChunk, ChatCompletionRequest } from '../providers/openai-types.js';

const ctx = { signal: new AbortController().signal, requestId: 'r', correlationId: 'c' };
const sim = new Simulator('sim', { ttft_ms: 0, itl_ms: 0 });
const ask = (extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: 'm',
  messages: [{ role: 'user', content: 'Tell me about the gateway.' }],
  ...extra,
});

async function collect(req: ChatCompletionRequest): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of await sim.chatStream(req, ctx)) out.push(c);
  return out;
}

const schemas: Array<[string, unknown]> = [
  [
    'zod object with nested array, enum, nullable and optional',
    z.toJSONSchema(
      z.object({
        name: z.string().min(12),
        kind: z.enum(['a', 'b']),
        tags: z.array(z.string()).min(2),
        score: z.number().min(5).max(9),
        count: z.int(),
        when: z.iso.datetime(),
        email: z.email(),
        note: z.string().nullable(),
        nested: z.object({ ok: z.boolean(), id: z.uuid() }),
      }),
    ),
  ],
  [
    '$defs and $ref, anyOf',
    {
      type: 'object',
      properties: {
        a: { $ref: '#/$defs/A' },
        b: { anyOf: [{ type: 'null' }, { type: 'integer', minimum: 3 }] },
      },
      required: ['a', 'b'],
      additionalProperties: false,
      $defs: { A: { type: 'object', properties: { x: { type: 'string', maxLength: 3 } }, required: ['x'] } },
    },
  ],
  ['a non-object root', { type: 'array', items: { type: 'number' }, minItems: 3 }],
  [
    'const and type lists',
    { type: 'object', properties: { c: { const: 7 }, t: { type: ['null', 'string'] } } },
  ],
];

describe('simulator response_format', () => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  for (const [name, schema] of schemas) {
    it(`json_schema answers validate: ${name}`, async () => {
      const validate = ajv.compile(schema as object);
      const req = ask({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
      const r = await sim.chat(req, ctx);
      const value: unknown = JSON.parse(r.choices[0]?.message.content ?? '');
      assert.ok(validate(value), JSON.stringify(validate.errors));
      // Streamed pieces concatenate to the same JSON.
      const streamed = (await collect({ ...req, stream: true }))
        .map((c) => c.choices[0]?.delta.content ?? '')
        .join('');
      assert.deepEqual(JSON.parse(streamed), value);
    });
  }
  it('json_object answers a JSON object', async () => {
    const r = await sim.chat(ask({ response_format: { type: 'json_object' } }), ctx);
    const v: unknown = JSON.parse(r.choices[0]?.message.content ?? '');
    assert.equal(typeof v, 'object');
  });
  it('samples words from the prompt, deterministically', () => {
    const s = { type: 'object', properties: { a: { type: 'string' } } };
    assert.deepEqual(sampleFromSchema(s, wordSource('p', 1)), sampleFromSchema(s, wordSource('p', 1)));
  });
});

describe('simulator n, stop, logprobs', () => {
  it('answers n choices, with their own text, and counts all of them', async () => {
    const one = await sim.chat(ask(), ctx);
    const r = await sim.chat(ask({ n: 3 }), ctx);
    assert.deepEqual(
      r.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.equal(new Set(r.choices.map((c) => c.message.content)).size, 3);
    assert.ok((r.usage?.completion_tokens ?? 0) > (one.usage?.completion_tokens ?? 0));
    const chunks = await collect(ask({ n: 2, stream: true }));
    for (const i of [0, 1]) {
      const text = chunks
        .filter((c) => c.choices[0]?.index === i)
        .map((c) => c.choices[0]?.delta.content ?? '')
        .join('');
      assert.equal(text, r.choices[i]?.message.content);
      assert.ok(chunks.some((c) => c.choices[0]?.index === i && c.choices[0].finish_reason === 'stop'));
    }
  });
  it('stops before the first stop sequence', async () => {
    const full = (await sim.chat(ask(), ctx)).choices[0]?.message.content ?? '';
    const word = full.split(' ')[3] ?? '';
    const r = await sim.chat(ask({ stop: ['zzz', ` ${word} `] }), ctx);
    assert.equal(r.choices[0]?.message.content, cutAtStop(full, ` ${word} `));
    assert.ok(!(r.choices[0]?.message.content ?? '').includes(` ${word} `));
    assert.equal(r.choices[0]?.finish_reason, 'stop');
  });
  it('gives plausible logprobs, streamed too', async () => {
    const r = await sim.chat(ask({ logprobs: true, top_logprobs: 4 }), ctx);
    const lp = (r.choices[0]?.logprobs as { content: ReturnType<typeof tokenLogprobs> }).content;
    assert.equal(lp.map((t) => t.token).join(''), r.choices[0]?.message.content);
    for (const t of lp) {
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 4);
      assert.equal(t.top_logprobs[0]?.token, t.token);
      for (let i = 1; i < t.top_logprobs.length; i++)
        assert.ok((t.top_logprobs[i]?.logprob ?? 0) < (t.top_logprobs[i - 1]?.logprob ?? 0));
      assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
    }
    const chunks = await collect(ask({ logprobs: true, top_logprobs: 2, stream: true }));
    assert.ok(chunks.some((c) => Array.isArray((c.choices[0]?.logprobs as { content?: unknown })?.content)));
    const plain = await sim.chat(ask(), ctx);
    assert.equal(plain.choices[0]?.logprobs, undefined);
  });
});

describe('simulator tool calls end agent loops', () => {
  const tools: ChatCompletionRequest['tools'] = [
    { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } },
  ];
  it('calls a tool the user names, then answers in text after the result', async () => {
    const first = await sim.chat(
      ask({ messages: [{ role: 'user', content: 'use get_weather' }], tools }),
      ctx,
    );
    const call = first.choices[0]?.message.tool_calls?.[0];
    assert.equal(call?.function.name, 'get_weather');
    const second = await sim.chat(
      ask({
        tools,
        messages: [
          { role: 'user', content: 'use get_weather' },
          { role: 'assistant', content: null, tool_calls: call ? [call] : [] },
          { role: 'tool', tool_call_id: call?.id ?? '', content: '18C' },
        ],
      }),
      ctx,
    );
    assert.equal(second.choices[0]?.finish_reason, 'stop');
    assert.equal(second.choices[0]?.message.tool_calls, undefined);
  });
  it('a forced tool_choice still calls the tool', async () => {
    const r = await sim.chat(
      ask({
        tools,
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      }),
      ctx,
    );
    assert.equal(r.choices[0]?.finish_reason, 'tool_calls');
  });
});
