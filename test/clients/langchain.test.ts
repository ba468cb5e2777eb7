/**
 * Client compatibility: LangChain JS (`@langchain/openai` ChatOpenAI on /v1/chat/completions),
 * unchanged, against the gateway on every provider kind. `useResponsesApi: true` calls the
 * Responses API: those cases are in responses-api.cases.ts.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI } from '@langchain/openai';
import { AIMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import { PROVIDER_COLUMNS } from '../../scripts/clients-table.js';
import { langchainResponsesCases } from './responses-api.cases.js';
import { ClientCases, KEY, MODELS, startSuite, type Suite } from './support/suite.js';

let s: Suite;
before(async () => {
  s = await startSuite();
});
after(() => s.close());

const cases = new ClientCases('langchain', 'LangChain JS (@langchain/openai ChatOpenAI)');

const Joke = z.object({ setup: z.string(), punchline: z.string(), rating: z.number() });

const getWeather = tool(async ({ city }: { city: string }) => JSON.stringify({ city, temperature_c: 18 }), {
  name: 'get_weather',
  description: 'Weather for a city',
  schema: z.object({ city: z.string() }),
});

function chat(model: string): ChatOpenAI {
  return new ChatOpenAI({ model, apiKey: KEY, configuration: { baseURL: s.baseURL }, maxRetries: 0 });
}

for (const p of PROVIDER_COLUMNS) {
  const model = MODELS[p];
  cases.case('invoke', p, async () => {
    const r = await chat(model).invoke('Say hello.');
    assert.ok(typeof r.content === 'string' && r.content.length > 0);
    assert.ok((r.usage_metadata?.total_tokens ?? 0) > 0);
  });

  cases.case('stream', p, async () => {
    let text = '';
    for await (const c of await chat(model).stream('Say hello.'))
      text += typeof c.content === 'string' ? c.content : '';
    assert.ok(text.length > 0);
  });

  cases.case('withStructuredOutput (zod)', p, async () => {
    const r = await chat(model).withStructuredOutput(Joke, { name: 'joke' }).invoke('Tell me a joke.');
    Joke.parse(r);
  });

  cases.case('bindTools + tool result turn', p, async () => {
    const llm = chat(model).bindTools([getWeather]);
    const first = await llm.invoke([new HumanMessage('Use get_weather for Paris.')]);
    const call = first.tool_calls?.[0];
    assert.equal(call?.name, 'get_weather');
    const result = await getWeather.invoke(call?.args as { city: string });
    const second = await llm.invoke([
      new HumanMessage('Use get_weather for Paris.'),
      new AIMessage({ content: first.content, tool_calls: first.tool_calls ?? [] }),
      new ToolMessage({ content: String(result), tool_call_id: call?.id ?? '' }),
    ]);
    assert.equal(second.tool_calls?.length ?? 0, 0);
    assert.ok(typeof second.content === 'string' && second.content.length > 0);
  });
}

langchainResponsesCases(cases, () => s);

cases.finish();
