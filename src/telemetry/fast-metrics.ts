/**
 * Prometheus counters and histograms for the request path (every request, every streamed chunk).
 * prom-client's `labels(...).inc()` / `.observe(v)` rebuild the label object, check the labels and
 * hash them on every call; here `labels()` returns the label set's own series (memoised), and
 * `inc` is one addition, `observe` a bucket search and three. Exposed through the same registry,
 * in the same text format, as prom-client's Counter and Histogram (`get()` gives the values a
 * Registry renders; a test compares the two line for line).
 */
import type { Registry } from 'prom-client';

/** One value line as prom-client's Registry renders it. */
interface ValueLine {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/** What get() returns (prom-client's .d.ts types `type` as an enum; at runtime it is the string). */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: ValueLine[];
}

interface FastMetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers?: Registry[];
  /** Label sets kept at most (all series are dropped when a new one would pass it). Default 10,000. */
  maxSeries?: number;
}

abstract class FastMetric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly L[];
  #series = new Map<string, { labels: Record<string, string>; s: S }>();
  readonly #max: number;

  constructor(opts: FastMetricOptions<L>) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    this.#max = opts.maxSeries ?? 10_000;
    // A Registry renders any metric with name, help, type and get(); its TypeScript type lists
    // prom-client's own classes only.
    for (const r of opts.registers ?? [])
      r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  protected abstract create(): S;
  protected abstract lines(labels: Record<string, string>, s: S, out: ValueLine[]): void;

  /** The series of these label values (in labelNames order), created on first use. */
  labels(...values: string[]): S {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.length === 1 ? (values[0] as string) : values.join('\u0000');
    let e = this.#series.get(key);
    if (e === undefined) {
      if (this.#series.size >= this.#max) this.#series.clear();
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] as string));
      e = { labels, s: this.create() };
      this.#series.set(key, e);
    }
    return e.s;
  }

  reset(): void {
    this.#series = new Map();
  }

  get(): Promise<MetricSnapshot> {
    const values: ValueLine[] = [];
    for (const e of this.#series.values()) this.lines(e.labels, e.s, values);
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    });
  }
}

export interface CounterSeries {
  inc(by?: number): void;
}

class CounterValue implements CounterSeries {
  value = 0;

  inc(by = 1): void {
    // prom-client's rules: a counter never goes down, and only numbers count.
    if (!(by >= 0)) throw new Error(`a counter cannot be increased by ${by}`);
    this.value += by;
  }
}

export class FastCounter<L extends string> extends FastMetric<L, CounterValue> {
  readonly type = 'counter' as const;

  protected create(): CounterValue {
    return new CounterValue();
  }

  protected lines(labels: Record<string, string>, s: CounterValue, out: ValueLine[]): void {
    out.push({ labels: { ...labels }, value: s.value });
  }
}

export interface HistogramSeries {
  observe(value: number): void;
}

class HistogramValue implements HistogramSeries {
  /** Per-bucket (not cumulative) counts; the last slot is above the highest bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
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

export class FastHistogram<L extends string> extends FastMetric<L, HistogramValue> {
  readonly type = 'histogram' as const;
  readonly #bounds: readonly number[];

  constructor(opts: FastMetricOptions<L> & { buckets: readonly number[] }) {
    super(opts);
    this.#bounds = [...opts.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramValue {
    return new HistogramValue(this.#bounds);
  }

  protected lines(labels: Record<string, string>, s: HistogramValue, out: ValueLine[]): void {
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    this.#bounds.forEach((le, i) => {
      acc += s.counts[i] as number;
      out.push({ metricName: bucket, labels: { le, ...labels }, value: acc });
    });
    out.push({ metricName: bucket, labels: { le: '+Inf', ...labels }, value: s.count });
    out.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: s.sum });
    out.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: s.count });
  }
}
