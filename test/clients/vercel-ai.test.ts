/**
 * Client compatibility: the Vercel AI SDK (`ai` with `@ai-sdk/openai` on /v1/chat/completions and
 * `@ai-sdk/anthropic` on /v1/messages), unchanged, against the gateway on every provider kind.
 * The default `createOpenAI()(model)` provider calls the Responses API: those cases are in
 * responses-api.cases.ts.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { z } from 'zod';
import { PROVIDER_COLUMNS } from '../../scripts/clients-table.js';
import { vercelResponsesCases } from './responses-api.cases.js';
import { ClientCases, KEY, MODELS, startSuite, type Suite } from './support/suite.js';

let s: Suite;
let openai: ReturnType<typeof createOpenAI>;
let anthropic: ReturnType<typeof createAnthropic>;
before(async () => {
  s = await startSuite();
  openai = createOpenAI({ baseURL: s.baseURL, apiKey: KEY });
  anthropic = createAnthropic({ baseURL: s.baseURL, apiKey: KEY });
});
after(() => s.close());

const cases = new ClientCases('vercel-ai', 'Vercel AI SDK (ai 6)');

const Recipe = z.object({ name: z.string(), steps: z.array(z.string()), minutes: z.number() });

function weatherTool(counter: { calls: number }) {
  return tool({
    description: 'Weather for a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      counter.calls++;
      return { city, temperature_c: 18 };
    },
  });
}

for (const p of PROVIDER_COLUMNS) {
  const model = MODELS[p];
  const viaOpenAI = () => openai.chat(model);
  const viaAnthropic = () => anthropic(model);

  for (const [label, lm] of [
    ['@ai-sdk/openai chat', viaOpenAI],
    ['@ai-sdk/anthropic', viaAnthropic],
  ] as const) {
    cases.case(`generateText (${label})`, p, async () => {
      const r = await generateText({ model: lm(), prompt: 'Say hello.', maxRetries: 0 });
      assert.ok(r.text.length > 0);
      assert.ok((r.usage.totalTokens ?? 0) > 0);
    });

    cases.case(`streamText (${label})`, p, async () => {
      const r = streamText({ model: lm(), prompt: 'Say hello.', maxRetries: 0 });
      let text = '';
      for await (const t of r.textStream) text += t;
      assert.ok(text.length > 0);
      assert.equal(await r.finishReason, 'stop');
    });

    cases.case(`tools, multi-step (${label})`, p, async () => {
      const counter = { calls: 0 };
      const r = await generateText({
        model: lm(),
        prompt: 'Use get_weather for Paris, then answer.',
        tools: { get_weather: weatherTool(counter) },
        stopWhen: stepCountIs(5),
        maxRetries: 0,
      });
      assert.equal(counter.calls, 1);
      assert.equal(r.steps.length, 2);
      assert.ok(r.text.length > 0);
    });

    cases.case(`generateObject (${label})`, p, async () => {
      const r = await generateObject({
        model: lm(),
        schema: Recipe,
        prompt: 'A pancake recipe.',
        maxRetries: 0,
      });
      Recipe.parse(r.object);
    });
  }
}

vercelResponsesCases(cases, () => s);

cases.finish();
