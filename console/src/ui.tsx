/** Small shared pieces: formatting, polling, a uPlot chart, error banners. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fmtNum = (n: number, digits = 2): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
export const fmtMs = (n: number | null | undefined): string => (n == null ? '—' : `${fmtNum(n, 1)} ms`);
export const fmtPct = (n: number): string => `${fmtNum(n * 100, 2)} %`;
export const fmtUsd = (n: number): string =>
  `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: n !== 0 && Math.abs(n) < 0.01 ? 6 : 4 })}`;
export const fmtTime = (iso: string | number | null): string =>
  iso == null ? '—' : new Date(iso).toISOString().replace('T', ' ').slice(0, 19);

/** Fetch now and every `everyMs`; keeps the last good value and the last error. */
export function usePoll<T>(
  load: () => Promise<T>,
  everyMs: number,
  deps: unknown[] = [],
): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      // A background tab does not poll (it catches up when shown again).
      if (document.hidden && everyMs > 0) {
        timer = setTimeout(() => void run(), everyMs);
        return;
      }
      try {
        const v = await load();
        if (!alive) return;
        setData(v);
        setError(undefined);
      } catch (e) {
        if (alive) setError((e as Error).message);
      }
      if (alive && everyMs > 0) timer = setTimeout(() => void run(), everyMs);
    };
    void run();
    return () => {
      alive = false;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

export function ErrorBanner({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

export function Card({ label, value, testid }: { label: string; value: string; testid?: string }) {
  return (
    <div class="card">
      <div class="card-label">{label}</div>
      <div class="card-value" data-testid={testid}>
        {value}
      </div>
    </div>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export interface SeriesSpec {
  label: string;
  color: string;
  bars?: boolean;
}

/**
 * The y axis of our charts (every series is a count, a duration or a cost: never negative): from 0
 * to a little above the largest value; 0–1 when there is nothing above 0 yet (uPlot's own default
 * for an all-zero series is 0–100, which reads as if something had been measured).
 */
export function yRange(max: number | null | undefined): [number, number] {
  if (max == null || !Number.isFinite(max) || max <= 0) return [0, 1];
  return [0, uPlot.rangeNum(0, max, 0.1, true)[1] ?? max];
}

/** A uPlot line/bar chart that follows its container's width. x values are epoch seconds. */
export function Chart({
  title,
  x,
  ys,
  series,
  height = 180,
}: {
  title: string;
  x: number[];
  ys: Array<Array<number | null>>;
  series: SeriesSpec[];
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => `${s.label}:${s.bars ? 'b' : 'l'}`).join('|');
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const bars = uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
    const opts: uPlot.Options = {
      title,
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(s.bars && bars ? { paths: bars, fill: s.color + '88' } : {}),
          spanGaps: true,
        })),
      ],
      scales: { y: { range: (_u, _min, max) => yRange(max) } },
      axes: [{}, { size: 60 }],
      hooks: {
        // The drawn y range, for tests and tools (the axis itself is canvas).
        draw: [
          (u) => {
            el.dataset.yMin = String(u.scales.y?.min ?? '');
            el.dataset.yMax = String(u.scales.y?.max ?? '');
          },
        ],
      },
    };
    const p = new uPlot(opts, [x, ...ys] as uPlot.AlignedData, el);
    plot.current = p;
    const ro = new ResizeObserver(() => p.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      p.destroy();
      plot.current = null;
    };
    // Recreate only when the series change; data updates go through setData below.
  }, [shape, title, height]);
  useEffect(() => {
    plot.current?.setData([x, ...ys] as uPlot.AlignedData);
  }, [x, ys]);
  return <div class="chart" ref={box} role="img" aria-label={title} />;
}
