/**
 * Client-compatibility cases that need `POST /v1/responses` (issue 17 item 1, built separately).
 * Not a *.test.ts file, so not run yet: when the Responses API lands, call these from the client
 * files (openai.test.ts, vercel-ai.test.ts, langchain.test.ts) before `cases.finish()`, rerun
 * the suite and `npm run docs` — the tables then gain these rows.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';
import { PROVIDER_COLUMNS } from '../../scripts/clients-table.js';
import { KEY, MODELS, type ClientCases, type Suite } from './support/suite.js';

/** openai SDK: responses.create and responses.stream. */
export function openAIResponsesCases(cases: ClientCases, suite: () => Suite): void {
  for (const p of PROVIDER_COLUMNS) {
    const model = MODELS[p];
    const client = () => new OpenAI({ baseURL: suite().baseURL, apiKey: KEY, maxRetries: 0 });
    cases.case('responses.create', p, async () => {
      const r = await client().responses.create({ model, input: 'Say hello.', instructions: 'Be brief.' });
      assert.ok(r.output_text.length > 0);
      assert.ok((r.usage?.total_tokens ?? 0) > 0);
    });
    cases.case('responses.stream', p, async () => {
      const stream = client().responses.stream({ model, input: 'Say hello.' });
      let text = '';
      stream.on('response.output_text.delta', (e) => {
        text += e.delta;
      });
      const final = await stream.finalResponse();
      assert.equal(text, final.output_text);
    });
  }
}

/** Vercel AI SDK: the default provider (`createOpenAI()(model)` calls /v1/responses). */
export function vercelResponsesCases(cases: ClientCases, suite: () => Suite): void {
  for (const p of PROVIDER_COLUMNS) {
    const lm = () => createOpenAI({ baseURL: suite().baseURL, apiKey: KEY })(MODELS[p]);
    cases.case('generateText (default provider, Responses API)', p, async () => {
      const r = await generateText({ model: lm(), prompt: 'Say hello.', maxRetries: 0 });
      assert.ok(r.text.length > 0);
    });
    cases.case('streamText (default provider, Responses API)', p, async () => {
      const r = streamText({ model: lm(), prompt: 'Say hello.', maxRetries: 0 });
      let text = '';
      for await (const t of r.textStream) text += t;
      assert.ok(text.length > 0);
    });
    cases.case('tools, multi-step (default provider, Responses API)', p, async () => {
      let calls = 0;
      const r = await generateText({
        model: lm(),
        prompt: 'Use get_weather for Paris, then answer.',
        tools: {
          get_weather: tool({
            description: 'Weather for a city',
            inputSchema: z.object({ city: z.string() }),
            execute: async ({ city }) => {
              calls++;
              return { city };
            },
          }),
        },
        stopWhen: stepCountIs(5),
        maxRetries: 0,
      });
      assert.equal(calls, 1);
      assert.ok(r.text.length > 0);
    });
    cases.case('generateObject (default provider, Responses API)', p, async () => {
      const schema = z.object({ name: z.string(), steps: z.array(z.string()) });
      const r = await generateObject({ model: lm(), schema, prompt: 'A recipe.', maxRetries: 0 });
      schema.parse(r.object);
    });
  }
}

/** LangChain: ChatOpenAI with useResponsesApi. */
export function langchainResponsesCases(cases: ClientCases, suite: () => Suite): void {
  for (const p of PROVIDER_COLUMNS) {
    cases.case('useResponsesApi invoke', p, async () => {
      const llm = new ChatOpenAI({
        model: MODELS[p],
        apiKey: KEY,
        configuration: { baseURL: suite().baseURL },
        useResponsesApi: true,
        maxRetries: 0,
      });
      const r = await llm.invoke('Say hello.');
      assert.ok(r.text.length > 0);
    });
  }
}
