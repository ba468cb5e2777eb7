/**
 * `portico sim`'s /metrics: vLLM's names (`vllm:*`, label `model_name`), so that dashboards and
 * alerts written for a vLLM fleet work against simulators (the `portico-sim` scrape job in
 * deploy/monitoring/prometheus/prometheus.yml; catalogued in deploy/monitoring/metrics-catalog.json
 * as `source: sim`). The values are the simulator's own: requests running (generating) and waiting
 * (held by an injected delay or hang, as by a model still loading), the tokens it counted, its
 * time to first token, its prefix-cache model, and a KV cache modelled as the tokens of the
 * running requests over a capacity.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Simulator } from './simulator.js';

/** The modelled KV-cache capacity (tokens) behind vllm:gpu_cache_usage_perc, unless set. */
export const SIM_KV_CACHE_TOKENS = 16_384;

// vLLM's buckets for time_to_first_token_seconds.
const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];

export interface SimMetricsOptions {
  /** The served model name (label `model_name`), as vLLM labels its series. */
  modelName: string;
  kvCacheTokens?: number;
}

/** A registry with the simulator's vllm:* series; it becomes the simulator's observer. */
export function simMetrics(sim: Simulator, opts: SimMetricsOptions): Registry {
  const registry = new Registry();
  const registers = [registry];
  const labelNames = ['model_name'] as const;
  const labels = { model_name: opts.modelName };
  const capacity = opts.kvCacheTokens ?? SIM_KV_CACHE_TOKENS;

  new Gauge({
    name: 'vllm:num_requests_running',
    help: 'Requests generating now.',
    labelNames,
    registers,
    collect() {
      this.set(labels, sim.running);
    },
  });
  new Gauge({
    name: 'vllm:num_requests_waiting',
    help: 'Requests held before their first byte (an injected delay or hang: a model still loading).',
    labelNames,
    registers,
    collect() {
      this.set(labels, sim.waiting);
    },
  });
  new Gauge({
    name: 'vllm:gpu_cache_usage_perc',
    help: `KV-cache usage, 0..1: tokens of the running requests over a modelled capacity of ${capacity} tokens.`,
    labelNames,
    registers,
    collect() {
      this.set(labels, Math.min(1, sim.kvTokens / capacity));
    },
  });
  const prompt = new Counter({
    name: 'vllm:prompt_tokens_total',
    help: 'Prompt tokens of the requests that started generating.',
    labelNames,
    registers,
  });
  const generation = new Counter({
    name: 'vllm:generation_tokens_total',
    help: 'Tokens generated.',
    labelNames,
    registers,
  });
  const ttft = new Histogram({
    name: 'vllm:time_to_first_token_seconds',
    help: 'Arrival to first token, injected delays included.',
    buckets: TTFT_BUCKETS,
    labelNames,
    registers,
  });
  const prefixQueries = new Counter({
    name: 'vllm:prefix_cache_queries_total',
    help: 'Prompt tokens looked up in the prefix cache (when the prefix-cache model is enabled).',
    labelNames,
    registers,
  });
  const prefixHits = new Counter({
    name: 'vllm:prefix_cache_hits_total',
    help: 'Prompt tokens found in the prefix cache.',
    labelNames,
    registers,
  });
  // Every series exists from the start, at 0.
  for (const c of [prompt, generation, prefixQueries, prefixHits]) c.inc(labels, 0);
  ttft.zero(labels);

  sim.observer = {
    promptTokens: (n) => prompt.inc(labels, n),
    generationTokens: (n) => generation.inc(labels, n),
    firstToken: (s) => ttft.observe(labels, s),
    prefixCache: (queried, hit) => {
      prefixQueries.inc(labels, queried);
      prefixHits.inc(labels, hit);
    },
  };
  return registry;
}
