/**
 * Client-compatibility cases for the Responses API (`POST /v1/responses`, docs/responses.md),
 * called from the client files (openai.test.ts, vercel-ai.test.ts, langchain.test.ts) before
 * `cases.finish()`; their rows are in the tables of docs/providers.md (`npm run docs`).
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { tool as lcTool } from '@langchain/core/tools';
import { HumanMessage } from '@langchain/core/messages';
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
    cases.case('responses: function tool round trip (previous_response_id)', p, async () => {
      const tools = [
        {
          type: 'function' as const,
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          strict: false,
        },
      ];
      const first = await client().responses.create({ model, input: 'Use get_weather for Paris.', tools });
      const call = first.output.find((o) => o.type === 'function_call');
      assert.ok(call && call.type === 'function_call', 'a function_call item');
      assert.equal(typeof JSON.parse(call.arguments), 'object');
      const second = await client().responses.create({
        model,
        previous_response_id: first.id,
        input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temperature_c":18}' }],
        tools,
      });
      assert.ok(second.output_text.length > 0);
      assert.ok(!second.output.some((o) => o.type === 'function_call'), 'the loop ends');
    });
    cases.case('responses.parse (zodTextFormat)', p, async () => {
      const Weather = z.object({ city: z.string(), temperature_c: z.number() });
      const r = await client().responses.parse({
        model,
        input: 'Weather in Paris as JSON.',
        text: { format: zodTextFormat(Weather, 'weather') },
      });
      Weather.parse(r.output_parsed);
    });
    cases.case('responses.retrieve / delete', p, async () => {
      const r = await client().responses.create({ model, input: 'Say hello.' });
      assert.equal((await client().responses.retrieve(r.id)).output_text, r.output_text);
      await client().responses.delete(r.id);
      await assert.rejects(client().responses.retrieve(r.id), OpenAI.NotFoundError);
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
    cases.case('useResponsesApi stream', p, async () => {
      const llm = new ChatOpenAI({
        model: MODELS[p],
        apiKey: KEY,
        configuration: { baseURL: suite().baseURL },
        useResponsesApi: true,
        maxRetries: 0,
      });
      let text = '';
      for await (const c of await llm.stream('Say hello.')) text += c.text;
      assert.ok(text.length > 0);
    });
    cases.case('useResponsesApi bindTools', p, async () => {
      const getWeather = lcTool(async ({ city }: { city: string }) => JSON.stringify({ city }), {
        name: 'get_weather',
        description: 'Weather for a city',
        schema: z.object({ city: z.string() }),
      });
      const llm = new ChatOpenAI({
        model: MODELS[p],
        apiKey: KEY,
        configuration: { baseURL: suite().baseURL },
        useResponsesApi: true,
        maxRetries: 0,
      }).bindTools([getWeather]);
      const r = await llm.invoke([new HumanMessage('Use get_weather for Paris.')]);
      assert.equal(r.tool_calls?.[0]?.name, 'get_weather');
    });
  }
}
