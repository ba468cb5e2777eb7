/**
 * Engine metrics, named beside vLLM's (`vllm:num_requests_running` -> `portico_engine_num_requests_running`,
 * ...). Each engine has its own prom-client registry, served by `portico engine` at /metrics.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40];

export class EngineStats {
  readonly registry = new Registry();
  #running = new Gauge({
    name: 'portico_engine_num_requests_running',
    help: 'Requests decoding on a context sequence now (vLLM: num_requests_running).',
    registers: [this.registry],
  });
  #waiting = new Gauge({
    name: 'portico_engine_num_requests_waiting',
    help: 'Requests waiting for a free sequence (vLLM: num_requests_waiting).',
    registers: [this.registry],
  });
  #ttft = new Histogram({
    name: 'portico_engine_time_to_first_token_seconds',
    help: 'Time from getting a sequence to the first generated token (vLLM: time_to_first_token_seconds).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  #itl = new Histogram({
    name: 'portico_engine_inter_token_latency_seconds',
    help: 'Time between generated tokens (vLLM: inter_token_latency_seconds).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  #queue = new Histogram({
    name: 'portico_engine_request_queue_time_seconds',
    help: 'Time spent waiting for a sequence (vLLM: request_queue_time_seconds).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  #prompt = new Counter({
    name: 'portico_engine_prompt_tokens_total',
    help: 'Prompt tokens processed (vLLM: prompt_tokens_total).',
    registers: [this.registry],
  });
  #generation = new Counter({
    name: 'portico_engine_generation_tokens_total',
    help: 'Tokens generated (vLLM: generation_tokens_total).',
    registers: [this.registry],
  });
  #success = new Counter({
    name: 'portico_engine_request_success_total',
    help: 'Finished requests by finish reason (vLLM: request_success_total).',
    labelNames: ['finished_reason'],
    registers: [this.registry],
  });

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
  promptTokens(n: number): void {
    this.#prompt.inc(n);
  }
  generationTokens(n: number): void {
    this.#generation.inc(n);
  }
  finished(reason: string): void {
    this.#success.inc({ finished_reason: reason });
  }
}
