/**
 * `portico sim` serves vLLM-style /metrics (docs/metrics.md, the `portico-sim` scrape job in
 * deploy/monitoring/prometheus/prometheus.yml): the vllm:* series in Prometheus text format,
 * moving with the requests the simulator actually serves. Before, GET /metrics was a 404.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestSim, type TestSim } from '../support/gateway.js';
import { eventually, series } from '../support/metrics.js';

interface ChatAnswer {
  usage: { prompt_tokens: number; completion_tokens: number };
}

describe('portico sim: GET /metrics', () => {
  let sim: TestSim;
  before(async () => {
    sim = await startTestSim({
      models: ['sim-small'],
      sim: { output_tokens: 6, prefix_cache: { enabled: true, prefix_chars: 64 } },
    });
  });
  after(() => sim.close());

  const one = async (name: string): Promise<number> => {
    const s = await series(sim, name);
    assert.deepEqual(Object.keys(s), ['model_name="sim-small"'], `${name}: one series, labelled model_name`);
    return s['model_name="sim-small"'] as number;
  };

  const chat = async (content: string, stream = false): Promise<ChatAnswer> => {
    const res = await fetch(`${sim.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'sim-small',
        stream,
        ...(stream ? { stream_options: { include_usage: true } } : {}),
        messages: [{ role: 'user', content }],
      }),
    });
    assert.equal(res.status, 200);
    if (!stream) return (await res.json()) as ChatAnswer;
    const events = (await res.text())
      .split('\n\n')
      .map((e) => e.replace(/^data: /, ''))
      .filter((e) => e.startsWith('{'))
      .map((e) => JSON.parse(e) as Partial<ChatAnswer>);
    const usage = events.find((e) => e.usage)?.usage;
    assert.ok(usage, 'the stream ends with its usage');
    return { usage };
  };

  it('serves the documented vllm:* series in Prometheus text format', async () => {
    const res = await fetch(`${sim.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const [name, type] of [
      ['vllm:num_requests_running', 'gauge'],
      ['vllm:num_requests_waiting', 'gauge'],
      ['vllm:prompt_tokens_total', 'counter'],
      ['vllm:generation_tokens_total', 'counter'],
      ['vllm:time_to_first_token_seconds', 'histogram'],
      ['vllm:gpu_cache_usage_perc', 'gauge'],
      ['vllm:prefix_cache_hits_total', 'counter'],
      ['vllm:prefix_cache_queries_total', 'counter'],
    ])
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
    assert.equal(await one('vllm:num_requests_running'), 0);
    assert.equal(await one('vllm:num_requests_waiting'), 0);
    assert.equal(await one('vllm:gpu_cache_usage_perc'), 0);
  });

  it('tokens, time to first token and the prefix cache move with the requests served', async () => {
    const prompt0 = await one('vllm:prompt_tokens_total');
    const gen0 = await one('vllm:generation_tokens_total');
    const ttft0 = await one('vllm:time_to_first_token_seconds_count');
    const queries0 = await one('vllm:prefix_cache_queries_total');
    const hits0 = await one('vllm:prefix_cache_hits_total');
    const answers = [
      await chat('the same prompt twice'),
      await chat('the same prompt twice', true),
      await chat('another prompt'),
    ];
    const prompt = answers.reduce((n, a) => n + a.usage.prompt_tokens, 0);
    const generated = answers.reduce((n, a) => n + a.usage.completion_tokens, 0);
    assert.ok(prompt > 0 && generated > 0);
    assert.equal((await one('vllm:prompt_tokens_total')) - prompt0, prompt);
    assert.equal((await one('vllm:generation_tokens_total')) - gen0, generated);
    assert.equal((await one('vllm:time_to_first_token_seconds_count')) - ttft0, 3);
    assert.equal(
      (await one('vllm:prefix_cache_queries_total')) - queries0,
      prompt,
      'every prompt token queried',
    );
    const hits = (await one('vllm:prefix_cache_hits_total')) - hits0;
    assert.ok(
      hits > 0 && hits <= (answers[1]?.usage.prompt_tokens ?? 0),
      `the repeated prompt hit (${hits})`,
    );
  });

  it('running, waiting and KV-cache usage show the requests in progress', async () => {
    // Generating: a slow first token. Running 1, its tokens hold part of the modelled KV cache.
    await sim.app.inject({ method: 'PATCH', url: '/sim/config', payload: { ttft_ms: 600 } });
    const generating = chat('a slow answer');
    await eventually(async () => assert.equal(await one('vllm:num_requests_running'), 1));
    assert.equal(await one('vllm:num_requests_waiting'), 0);
    const usage = await one('vllm:gpu_cache_usage_perc');
    assert.ok(usage > 0 && usage < 1, `KV-cache usage ${usage}`);
    await generating;
    await eventually(async () => assert.equal(await one('vllm:num_requests_running'), 0));
    assert.equal(await one('vllm:gpu_cache_usage_perc'), 0);
    // Held before the first byte by an injected delay (a model still loading): waiting, not running.
    await sim.app.inject({
      method: 'PATCH',
      url: '/sim/config',
      payload: { ttft_ms: 0, faults: { slow_headers_ms: 600 } },
    });
    const held = chat('held');
    await eventually(async () => assert.equal(await one('vllm:num_requests_waiting'), 1));
    assert.equal(await one('vllm:num_requests_running'), 0);
    await held;
    await eventually(async () => assert.equal(await one('vllm:num_requests_waiting'), 0));
    await sim.app.inject({ method: 'PATCH', url: '/sim/config', payload: { faults: null } });
  });
});
