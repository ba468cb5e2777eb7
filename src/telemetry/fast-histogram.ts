/**
 * A Prometheus histogram for observations made many times per request (the inter-token latency of
 * every streamed chunk). prom-client's `labels(...).observe(v)` rebuilds the label object, checks
 * the labels and hashes them on every call; here `labels()` returns the label set's own series
 * (memoised), and `observe` is a bucket search and three additions. Exposed through the same
 * registry, in the same text format, as a prom-client Histogram (`get()` gives the values a
 * Registry renders: cumulative `_bucket` series with `le`, then `_sum` and `_count`).
 */
import type { Registry } from 'prom-client';

/** One value line as prom-client's Registry renders it (its .d.ts types `type` as an enum; at runtime it is the string). */
interface ValueLine {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface HistogramSnapshot {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: ValueLine[];
}

export interface HistogramSeries {
  observe(value: number): void;
}

class Series implements HistogramSeries {
  /** Per-bucket (not cumulative) counts; the last slot is above the highest bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

export class FastHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly L[];
  readonly #bounds: readonly number[];
  #series = new Map<string, Series>();
  readonly #max: number;

  constructor(opts: {
    name: string;
    help: string;
    labelNames: readonly L[];
    buckets: readonly number[];
    registers?: Registry[];
    /** Label sets kept at most (all series are dropped when a new one would pass it). Default 10,000. */
    maxSeries?: number;
  }) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    this.#bounds = [...opts.buckets].sort((a, b) => a - b);
    this.#max = opts.maxSeries ?? 10_000;
    // A Registry renders any metric with name, help, type and get(); its TypeScript type lists
    // prom-client's own classes only.
    for (const r of opts.registers ?? [])
      r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of these label values (in labelNames order), created on first use. */
  labels(...values: string[]): HistogramSeries {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.length === 1 ? (values[0] as string) : values.join('\u0000');
    let s = this.#series.get(key);
    if (s === undefined) {
      if (this.#series.size >= this.#max) this.#series.clear();
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] as string));
      s = new Series(labels, this.#bounds);
      this.#series.set(key, s);
    }
    return s;
  }

  reset(): void {
    this.#series = new Map();
  }

  get(): Promise<HistogramSnapshot> {
    const values: ValueLine[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      let acc = 0;
      this.#bounds.forEach((le, i) => {
        acc += s.counts[i] as number;
        values.push({ metricName: bucket, labels: { le, ...s.labels }, value: acc });
      });
      values.push({ metricName: bucket, labels: { le: '+Inf', ...s.labels }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...s.labels }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...s.labels }, value: s.count });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    });
  }
}
