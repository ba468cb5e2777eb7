/**
 * Engine metrics, named beside vLLM's (`vllm:num_requests_running` -> `portico_engine_num_requests_running`,
 * ...), labelled by `backend`. `portico engine` serves its own registry at /metrics; an in-process
 * engine (provider kind `engine`) registers into the gateway's registry, so the gateway's /metrics
 * carries them too (one series per engine backend).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40];

interface EngineMetricSet {
  running: Gauge<'backend'>;
  waiting: Gauge<'backend'>;
  ttft: Histogram<'backend'>;
  itl: Histogram<'backend'>;
  queue: Histogram<'backend'>;
  e2e: Histogram<'backend'>;
  prompt: Counter<'backend'>;
  generation: Counter<'backend'>;
  success: Counter<'backend' | 'finished_reason'>;
  downloaded: Gauge<'backend'>;
  modelSize: Gauge<'backend'>;
}

// One set of metric families per registry, shared by every engine that reports into it.
const sets = new WeakMap<Registry, EngineMetricSet>();

function metricSet(registry: Registry): EngineMetricSet {
  let set = sets.get(registry);
  if (set) return set;
  const registers = [registry];
  const labelNames = ['backend'] as const;
  set = {
    downloaded: new Gauge({
      name: 'portico_engine_model_download_bytes',
      help: 'Bytes of the model file downloaded so far (equals portico_engine_model_size_bytes once it is complete).',
      labelNames,
      registers,
    }),
    modelSize: new Gauge({
      name: 'portico_engine_model_size_bytes',
      help: 'Size of the model file being downloaded (0 until the download starts or when the size is unknown).',
      labelNames,
      registers,
    }),
    running: new Gauge({
      name: 'portico_engine_num_requests_running',
      help: 'Requests decoding on a context sequence now (vLLM: num_requests_running).',
      labelNames,
      registers,
    }),
    waiting: new Gauge({
      name: 'portico_engine_num_requests_waiting',
      help: 'Requests waiting for a free sequence (vLLM: num_requests_waiting).',
      labelNames,
      registers,
    }),
    ttft: new Histogram({
      name: 'portico_engine_time_to_first_token_seconds',
      help: 'Time from getting a sequence to the first generated token (vLLM: time_to_first_token_seconds).',
      buckets: LATENCY_BUCKETS,
      labelNames,
      registers,
    }),
    itl: new Histogram({
      name: 'portico_engine_inter_token_latency_seconds',
      help: 'Time between generated tokens (vLLM: inter_token_latency_seconds).',
      buckets: LATENCY_BUCKETS,
      labelNames,
      registers,
    }),
    queue: new Histogram({
      name: 'portico_engine_request_queue_time_seconds',
      help: 'Time spent waiting for a sequence (vLLM: request_queue_time_seconds).',
      buckets: LATENCY_BUCKETS,
      labelNames,
      registers,
    }),
    e2e: new Histogram({
      name: 'portico_engine_e2e_request_latency_seconds',
      help: 'Time from arrival to the last token of finished requests, queue included (vLLM: e2e_request_latency_seconds).',
      buckets: LATENCY_BUCKETS,
      labelNames,
      registers,
    }),
    prompt: new Counter({
      name: 'portico_engine_prompt_tokens_total',
      help: 'Prompt tokens processed (vLLM: prompt_tokens_total).',
      labelNames,
      registers,
    }),
    generation: new Counter({
      name: 'portico_engine_generation_tokens_total',
      help: 'Tokens generated (vLLM: generation_tokens_total).',
      labelNames,
      registers,
    }),
    success: new Counter({
      name: 'portico_engine_request_success_total',
      help: 'Finished requests by finish reason (vLLM: request_success_total).',
      labelNames: ['backend', 'finished_reason'],
      registers,
    }),
  };
  sets.set(registry, set);
  return set;
}

export interface EngineStatsOptions {
  /** Where the series go (default: a registry of this engine's own). */
  registry?: Registry;
  /** The `backend` label (default `engine`). */
  backend?: string;
}

export class EngineStats {
  readonly registry: Registry;
  readonly backend: string;
  #set: EngineMetricSet;
  #running: Gauge.Internal<'backend'>;
  #waiting: Gauge.Internal<'backend'>;
  #ttft: Histogram.Internal<'backend'>;
  #itl: Histogram.Internal<'backend'>;
  #queue: Histogram.Internal<'backend'>;
  #e2e: Histogram.Internal<'backend'>;
  #prompt: Counter.Internal;
  #generation: Counter.Internal;

  constructor(opts: EngineStatsOptions = {}) {
    this.registry = opts.registry ?? new Registry();
    this.backend = opts.backend ?? 'engine';
    const s = (this.#set = metricSet(this.registry));
    const b = this.backend;
    this.#running = s.running.labels(b);
    this.#waiting = s.waiting.labels(b);
    this.#ttft = s.ttft.labels(b);
    this.#itl = s.itl.labels(b);
    this.#queue = s.queue.labels(b);
    this.#e2e = s.e2e.labels(b);
    this.#prompt = s.prompt.labels(b);
    this.#generation = s.generation.labels(b);
    // Present from the start (at 0), like vLLM's gauges.
    this.#running.inc(0);
    this.#waiting.inc(0);
  }

  running(d: number): void {
    this.#running.inc(d);
  }
  waiting(d: number): void {
    this.#waiting.inc(d);
  }
  ttft(s: number): void {
    this.#ttft.observe(s);
  }
  itl(s: number): void {
    this.#itl.observe(s);
  }
  queueTime(s: number): void {
    this.#queue.observe(s);
  }
  e2e(s: number): void {
    this.#e2e.observe(s);
  }
  promptTokens(n: number): void {
    this.#prompt.inc(n);
  }
  generationTokens(n: number): void {
    this.#generation.inc(n);
  }
  finished(reason: string): void {
    this.#set.success.inc({ backend: this.backend, finished_reason: reason });
  }
  /** Model download progress (bytes). */
  download(done: number, total: number): void {
    this.#set.downloaded.set({ backend: this.backend }, done);
    this.#set.modelSize.set({ backend: this.backend }, total);
  }
}
