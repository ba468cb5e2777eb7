/**
 * Drill quota-no-max-tokens (issue 15): 200 concurrent chat requests WITHOUT max_tokens against a
 * 3,000-token daily quota (admission.default_output_tokens: 16; the simulator answers 48 tokens
 * unless capped), with one embedded replica and with replicas sharing Redis + Postgres. The tokens
 * the quota records must stay within the quota plus the prompt-estimate tolerance: the sum, over
 * admitted requests, of how far the backend's prompt count exceeded the gateway's estimate.
 * (Before reservations bound the upstream, this recorded 6,105 tokens: +103%.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { countMessages, loadTokenizer } from '../../src/tenancy/tokens.js';
import type { ChatMessage } from '../../src/providers/openai-types.js';
import { drillSize, recordDrill, type DrillFigure } from './support.js';
import {
  distributedServices,
  fmt,
  Fleet,
  settledTally,
  startHttpSim,
  type HttpSim,
  type StateMode,
} from './quota-support.js';

const QUOTA = 3000;
const CONCURRENT = 200;
const KEY = 'sk-drill-quota-budget';
const SYSTEM = 'You are a concise assistant for the budget team.';
const TOPICS = ['invoices', 'the roadmap', 'a flaky test', 'quota limits', 'the on-call rota'];

function config(simBaseURL: string): Record<string, unknown> {
  return {
    admission: { default_output_tokens: 16 },
    tenants: [
      {
        id: 'budget',
        system_prompt: SYSTEM,
        api_keys: [{ value: KEY }],
        quota: { daily_tokens: QUOTA },
      },
    ],
    models: {
      default: {
        backends: [{ id: 'http-sim', provider: 'openai', base_url: simBaseURL, model: 'sim' }],
        retry: { attempts: 1 },
      },
    },
  };
}

interface Burst {
  admitted: number;
  refused: number;
  other: string[];
  clientTokens: number;
  completionMax: number;
  cut: number;
  tolerance: number;
  worstDiff: number;
  recorded: number;
  held: number;
}

/** Fire `CONCURRENT` requests at once, spread over the replicas; then read the settled tally. */
async function burst(fleet: Fleet): Promise<Burst> {
  loadTokenizer();
  const clients = fleet.urls.map((u) => new OpenAI({ apiKey: KEY, baseURL: `${u}/v1`, maxRetries: 0 }));
  const out: Burst = {
    admitted: 0,
    refused: 0,
    other: [],
    clientTokens: 0,
    completionMax: 0,
    cut: 0,
    tolerance: 0,
    worstDiff: Number.NEGATIVE_INFINITY,
    recorded: 0,
    held: 0,
  };
  await Promise.all(
    Array.from({ length: CONCURRENT }, async (_, i) => {
      const messages: ChatCompletionMessageParam[] = [
        { role: 'user', content: `Request ${i}: say something short about ${TOPICS[i % TOPICS.length]}.` },
      ];
      const client = clients[i % clients.length] as OpenAI;
      try {
        const r = await client.chat.completions.create({ model: 'default', messages });
        out.admitted++;
        const u = r.usage;
        assert.ok(u, 'the backend reports usage');
        out.clientTokens += u.total_tokens;
        out.completionMax = Math.max(out.completionMax, u.completion_tokens);
        if (r.choices[0]?.finish_reason === 'length') out.cut++;
        // What the gateway reserved for the prompt: its own count of the shaped messages.
        const estimate = countMessages([{ role: 'system', content: SYSTEM }, ...(messages as ChatMessage[])]);
        const diff = u.prompt_tokens - estimate;
        out.worstDiff = Math.max(out.worstDiff, diff);
        out.tolerance += Math.max(0, diff);
      } catch (err) {
        if (err instanceof OpenAI.RateLimitError && err.code === 'insufficient_quota') out.refused++;
        else out.other.push(String(err));
      }
    }),
  );
  const t = await settledTally(fleet.urls[0] as string, 'budget');
  out.recorded = t.usedTokens;
  out.held = t.reservedTokens;
  return out;
}

describe('drill quota-no-max-tokens: no quota overshoot when requests omit max_tokens', () => {
  let sim: HttpSim;
  let services: Awaited<ReturnType<typeof distributedServices>>;
  const figures: DrillFigure[] = [];
  const notes: string[] = [];

  before(async () => {
    sim = await startHttpSim({ mode: 'lorem', output_tokens: 48, ttft_ms: 40 });
    services = await distributedServices();
  });
  after(async () => {
    await sim.close();
    await recordDrill('quota-no-max-tokens', {
      title: `${CONCURRENT} concurrent requests without max_tokens against a ${fmt(QUOTA)}-token daily quota`,
      guarantee:
        'completion tokens never exceed the quota; tokens recorded <= quota + the prompt-estimate tolerance (the sum of how far the backend counted more prompt tokens than the gateway estimated)',
      figures,
      notes: [
        'admission.default_output_tokens: 16; the simulator answers 48 tokens unless capped; no model max_output_tokens set',
        'before the fix (upstream not capped at the reservation): 6,105 tokens recorded, +103% over the quota',
        ...notes,
      ],
    });
  });

  const run = async (label: string, mode: StateMode, replicas: number): Promise<void> => {
    const fleet = await Fleet.start(mode, replicas, config(sim.baseURL));
    let b: Burst;
    try {
      b = await burst(fleet);
    } finally {
      await fleet.close();
    }
    const bound = QUOTA + b.tolerance;
    const ok = b.recorded <= bound;
    figures.push(
      {
        label: `${label}: requests admitted / refused (insufficient_quota)`,
        value: `${b.admitted} / ${b.refused}`,
      },
      {
        label: `${label}: tokens recorded by the quota`,
        value: b.recorded,
        unit: 'tokens',
        bound: `<= ${fmt(QUOTA)} + ${fmt(b.tolerance)} (prompt-estimate tolerance)`,
        ok,
      },
      { label: `${label}: tokens in the responses' usage`, value: b.clientTokens, unit: 'tokens' },
      {
        label: `${label}: answers cut by the cap (finish_reason length)`,
        value: b.cut,
        unit: 'responses',
      },
      { label: `${label}: longest answer`, value: b.completionMax, unit: 'tokens' },
      {
        label: `${label}: backend prompt count minus gateway estimate, worst request`,
        value: b.worstDiff,
        unit: 'tokens',
      },
    );
    assert.deepEqual(b.other, [], 'only answers and insufficient_quota refusals');
    assert.equal(b.held, 0, 'every reservation settled');
    assert.equal(b.admitted + b.refused, CONCURRENT);
    assert.equal(b.recorded, b.clientTokens, 'the quota records what the responses reported');
    assert.ok(ok, `${label}: recorded ${b.recorded} tokens > quota ${QUOTA} + tolerance ${b.tolerance}`);
    assert.ok(b.admitted > 0, 'some requests were served');
  };

  it('one replica (embedded, SQLite)', async () => {
    await run('1 replica, embedded', { kind: 'embedded' }, 1);
  });

  it('replicas sharing Redis + Postgres (distributed)', async (t) => {
    if ('reason' in services) {
      if (process.env.CI === 'true') assert.fail(`CI=true but ${services.reason}`);
      notes.push(`distributed part SKIPPED: ${services.reason}`);
      return t.skip(services.reason);
    }
    const n = drillSize(2, 3);
    await run(`${n} replicas, Redis + Postgres`, { kind: 'distributed', pgUrl: services.pgUrl }, n);
  });
});
