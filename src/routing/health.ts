/**
 * Active health checks: every `interval_ms` each checked backend's provider answers its health
 * probe (OpenAI-compatible: GET <base>/models; Anthropic: GET /v1/models; sim: always ok) within
 * `timeout_ms`. `unhealthy_threshold` failures in a row eject it (requests avoid it while another
 * backend of the pool is healthy); `healthy_threshold` passes in a row readmit it. Passive
 * ejection from live traffic is the circuit breaker's job (dispatch).
 */
import type { Logger } from '../telemetry/logger.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import type { Snapshot } from '../pipeline/snapshot.js';
import type { Backend } from './pool.js';

interface Track {
  pass: number;
  fail: number;
  nextAt: number;
  running: boolean;
}

const TICK_MS = 100;

export function publishBackendState(metrics: GatewayMetrics, b: Backend, model: string): void {
  metrics.backendUp.labels(b.id, model).set(b.healthy && b.circuit.state !== 'open' ? 1 : 0);
  metrics.circuitState.labels(b.id, model).set(b.circuit.code);
}

export class HealthChecker {
  readonly #snapshot: () => Snapshot;
  readonly #metrics: GatewayMetrics;
  readonly #logger: Logger;
  readonly #tracks = new Map<string, Track>();
  #timer: NodeJS.Timeout | undefined;

  constructor(snapshot: () => Snapshot, metrics: GatewayMetrics, logger: Logger) {
    this.#snapshot = snapshot;
    this.#metrics = metrics;
    this.#logger = logger;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const snap = this.#snapshot();
    const now = Date.now();
    for (const [alias, pool] of snap.pools) {
      const hc = snap.config.models[alias]?.health_check;
      if (!hc) continue;
      for (const b of pool.backends) {
        const enabled = hc.enabled ?? b.provider.kind !== 'sim';
        if (!enabled) continue;
        const t = this.#tracks.get(b.id) ?? { pass: 0, fail: 0, nextAt: now, running: false };
        this.#tracks.set(b.id, t);
        if (t.running || now < t.nextAt) continue;
        t.running = true;
        t.nextAt = now + hc.interval_ms;
        void this.#check(b, alias, t, hc.timeout_ms, hc.unhealthy_threshold, hc.healthy_threshold);
      }
    }
  }

  async #check(
    b: Backend,
    alias: string,
    t: Track,
    timeoutMs: number,
    down: number,
    up: number,
  ): Promise<void> {
    let ok = false;
    let detail = '';
    try {
      const r = await b.provider.health(AbortSignal.timeout(timeoutMs));
      ok = r.ok;
      detail = r.detail ?? '';
    } catch (err) {
      detail = err instanceof Error ? err.message : String(err);
    } finally {
      t.running = false;
    }
    if (ok) {
      t.pass++;
      t.fail = 0;
      if (!b.healthy && t.pass >= up) {
        b.healthy = true;
        delete b.healthReason;
        this.#logger.info({ backend: b.id, model: alias }, 'backend readmitted: health checks pass');
      }
    } else {
      t.fail++;
      t.pass = 0;
      if (b.healthy && t.fail >= down) {
        b.healthy = false;
        b.healthReason = `${t.fail} health checks failed in a row: ${detail || 'no answer'}`;
        this.#logger.warn({ backend: b.id, model: alias, reason: b.healthReason }, 'backend ejected');
      }
    }
    publishBackendState(this.#metrics, b, alias);
  }
}
