/**
 * Live statistics for the console's Overview page, computed in-process (no Prometheus needed).
 *
 * A ring of one-second slots covers the last `horizonSeconds`. Recording a finished request is
 * O(1): find the slot for the current second (resetting it if it is stale), bump counters and one
 * bucket of a fixed log-scale latency histogram, for the total and for the request's tenant and
 * model. Reading (`GET /admin/stats`, every few seconds) walks the slots of the asked window.
 */
import type { StatsRow, StatsSnapshot } from '../http/wire.js';

export type { StatsRow, StatsSnapshot };

/** Latency histogram bucket upper bounds in ms: 1 ms .. ~110 s, ratio 1.25 (≈ 12% error on a percentile). */
const BOUNDS: readonly number[] = (() => {
  const out: number[] = [];
  for (let v = 1; v < 120_000; v *= 1.25) out.push(v);
  return out;
})();
const LOG_RATIO = Math.log(1.25);

function bucketOf(ms: number): number {
  if (!(ms > 1)) return 0;
  const i = Math.ceil(Math.log(ms) / LOG_RATIO - 1e-9);
  return i >= BOUNDS.length ? BOUNDS.length : i;
}

interface Agg {
  requests: number;
  errors: number;
  tokensIn: number;
  tokensOut: number;
  cost: number;
  latencySum: number;
  /** BOUNDS.length + 1 buckets (the last one is overflow) */
  hist: Uint32Array;
}

function newAgg(): Agg {
  return {
    requests: 0,
    errors: 0,
    tokensIn: 0,
    tokensOut: 0,
    cost: 0,
    latencySum: 0,
    hist: new Uint32Array(BOUNDS.length + 1),
  };
}

function addInto(into: Agg, from: Agg): void {
  into.requests += from.requests;
  into.errors += from.errors;
  into.tokensIn += from.tokensIn;
  into.tokensOut += from.tokensOut;
  into.cost += from.cost;
  into.latencySum += from.latencySum;
  for (let i = 0; i < from.hist.length; i++) into.hist[i] = (into.hist[i] ?? 0) + (from.hist[i] ?? 0);
}

function percentile(hist: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i] ?? 0;
    if (seen >= rank) return Math.round((BOUNDS[i] ?? BOUNDS[BOUNDS.length - 1] ?? 0) * 10) / 10;
  }
  return null;
}

interface Slot {
  second: number;
  total: Agg;
  byTenant: Map<string, Agg>;
  byModel: Map<string, Agg>;
  byBackend: Map<string, Agg>;
}

export interface FinishedSample {
  tenant: string;
  model: string;
  /** The backend that answered (absent when none was reached). */
  backend?: string | undefined;
  status: number;
  latencyMs: number;
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
}

function row(a: Agg, seconds: number): StatsRow {
  return {
    requests: a.requests,
    rps: Math.round((a.requests / seconds) * 1000) / 1000,
    errors: a.errors,
    error_rate: a.requests === 0 ? 0 : Math.round((a.errors / a.requests) * 10_000) / 10_000,
    p50_ms: percentile(a.hist, a.requests, 0.5),
    p95_ms: percentile(a.hist, a.requests, 0.95),
    mean_ms: a.requests === 0 ? null : Math.round((a.latencySum / a.requests) * 10) / 10,
    tokens_in: a.tokensIn,
    tokens_out: a.tokensOut,
    cost_usd: Math.round(a.cost * 1e6) / 1e6,
  };
}

export class LiveStats {
  readonly horizonSeconds: number;
  readonly #slots: Array<Slot | undefined>;
  readonly #now: () => number;
  /** Distinct tenants/models tracked per slot are capped so a flood of odd names cannot grow memory. */
  static readonly MAX_GROUPS = 200;

  constructor(opts: { horizonSeconds?: number; now?: () => number } = {}) {
    this.horizonSeconds = opts.horizonSeconds ?? 300;
    this.#slots = new Array<Slot | undefined>(this.horizonSeconds);
    this.#now = opts.now ?? Date.now;
  }

  #slot(second: number): Slot {
    const i = second % this.horizonSeconds;
    let s = this.#slots[i];
    if (!s || s.second !== second) {
      s = { second, total: newAgg(), byTenant: new Map(), byModel: new Map(), byBackend: new Map() };
      this.#slots[i] = s;
    }
    return s;
  }

  record(sample: FinishedSample): void {
    const s = this.#slot(Math.floor(this.#now() / 1000));
    const b = bucketOf(sample.latencyMs);
    const error = sample.status >= 400 ? 1 : 0;
    bump(s.total, sample, b, error);
    bump(groupOf(s.byTenant, sample.tenant), sample, b, error);
    bump(groupOf(s.byModel, sample.model), sample, b, error);
    if (sample.backend !== undefined) bump(groupOf(s.byBackend, sample.backend), sample, b, error);
  }

  /** Aggregate the last `windowSeconds` (excluding the current, incomplete second) and a series by `stepSeconds`. */
  snapshot(windowSeconds = 60, stepSeconds = 5): StatsSnapshot {
    const now = this.#now();
    const window = Math.max(1, Math.min(this.horizonSeconds - 1, Math.floor(windowSeconds)));
    const step = Math.max(1, Math.min(window, Math.floor(stepSeconds)));
    const current = Math.floor(now / 1000);
    const first = current - window;
    const total = newAgg();
    const byTenant = new Map<string, Agg>();
    const byModel = new Map<string, Agg>();
    const byBackend = new Map<string, Agg>();
    const steps = Math.ceil(window / step);
    const series: StatsSnapshot['series'] = [];
    for (let k = 0; k < steps; k++) {
      const from = first + k * step;
      const to = Math.min(current, from + step);
      const agg = newAgg();
      for (let sec = from; sec < to; sec++) {
        const s = this.#slots[((sec % this.horizonSeconds) + this.horizonSeconds) % this.horizonSeconds];
        if (!s || s.second !== sec) continue;
        addInto(agg, s.total);
        for (const [name, a] of s.byTenant) addInto(groupOf(byTenant, name), a);
        for (const [name, a] of s.byModel) addInto(groupOf(byModel, name), a);
        for (const [name, a] of s.byBackend) addInto(groupOf(byBackend, name), a);
      }
      addInto(total, agg);
      const r = row(agg, to - from);
      series.push({
        t: from * 1000,
        rps: r.rps,
        error_rate: r.error_rate,
        p50_ms: r.p50_ms,
        p95_ms: r.p95_ms,
        tokens: agg.tokensIn + agg.tokensOut,
      });
    }
    const sortRows = <T extends StatsRow>(rows: T[]): T[] => rows.sort((a, b) => b.requests - a.requests);
    return {
      object: 'stats',
      now,
      window_s: window,
      step_s: step,
      totals: row(total, window),
      by_tenant: sortRows([...byTenant].map(([tenant, a]) => ({ tenant, ...row(a, window) }))),
      by_model: sortRows([...byModel].map(([model, a]) => ({ model, ...row(a, window) }))),
      by_backend: sortRows([...byBackend].map(([backend, a]) => ({ backend, ...row(a, window) }))),
      series,
    };
  }
}

function bump(a: Agg, sample: FinishedSample, bucket: number, error: number): void {
  a.requests++;
  a.errors += error;
  a.tokensIn += sample.tokensIn;
  a.tokensOut += sample.tokensOut;
  a.cost += sample.costUsd;
  a.latencySum += sample.latencyMs;
  a.hist[bucket] = (a.hist[bucket] ?? 0) + 1;
}

function groupOf(map: Map<string, Agg>, name: string): Agg {
  let a = map.get(name);
  if (!a) {
    if (map.size >= LiveStats.MAX_GROUPS) name = '(other)';
    a = map.get(name);
    if (!a) {
      a = newAgg();
      map.set(name, a);
    }
  }
  return a;
}
