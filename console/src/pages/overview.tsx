/** Overview: live numbers from GET /admin/stats (an in-process sliding window), refreshed every 2 s. */
import { useState } from 'preact/hooks';
import { api, type Stats, type StatsRow } from '../api';
import { Card, Chart, ErrorBanner, fmtInt, fmtMs, fmtNum, fmtPct, fmtUsd, Section, usePoll } from '../ui';

const WINDOWS = [
  [60, 'last minute', 5],
  [120, 'last 2 minutes', 5],
  [280, 'last 5 minutes', 10],
] as const;

function GroupTable({ rows, name }: { rows: Array<StatsRow & { name: string }>; name: string }) {
  if (rows.length === 0) return <p class="muted">No requests in this window.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">{name}</th>
            <th scope="col">req/s</th>
            <th scope="col">requests</th>
            <th scope="col">errors</th>
            <th scope="col">p50</th>
            <th scope="col">p95</th>
            <th scope="col">tokens in</th>
            <th scope="col">tokens out</th>
            <th scope="col">cost</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name} data-testid={`${name}-row-${r.name}`}>
              <th scope="row">{r.name}</th>
              <td>{fmtNum(r.rps, 2)}</td>
              <td>{fmtInt(r.requests)}</td>
              <td>{fmtPct(r.error_rate)}</td>
              <td>{fmtMs(r.p50_ms)}</td>
              <td>{fmtMs(r.p95_ms)}</td>
              <td>{fmtInt(r.tokens_in)}</td>
              <td>{fmtInt(r.tokens_out)}</td>
              <td>{fmtUsd(r.cost_usd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Overview() {
  const [win, setWin] = useState(0);
  const [seconds, , step] = WINDOWS[win] ?? WINDOWS[0];
  const { data, error } = usePoll(
    () => api<Stats>('GET', `/admin/stats?window=${seconds}&step=${step}`),
    2000,
    [seconds, step],
  );
  const t = data?.totals;
  const x = data?.series.map((s) => s.t / 1000) ?? [];
  return (
    <>
      <div class="title-row">
        <h1>Overview</h1>
        <label>
          Window{' '}
          <select value={win} onChange={(e) => setWin(Number((e.target as HTMLSelectElement).value))}>
            {WINDOWS.map(([, label], i) => (
              <option key={label} value={i}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBanner error={error} />
      <div class="cards" aria-live="polite">
        <Card label="Requests/s" testid="stat-rps" value={t ? fmtNum(t.rps, 2) : '—'} />
        <Card label="Requests" testid="stat-requests" value={t ? fmtInt(t.requests) : '—'} />
        <Card label="p50 latency" testid="stat-p50" value={fmtMs(t?.p50_ms)} />
        <Card label="p95 latency" testid="stat-p95" value={fmtMs(t?.p95_ms)} />
        <Card label="Error rate" testid="stat-errors" value={t ? fmtPct(t.error_rate) : '—'} />
        <Card
          label="Tokens in / out"
          testid="stat-tokens"
          value={t ? `${fmtInt(t.tokens_in)} / ${fmtInt(t.tokens_out)}` : '—'}
        />
        <Card label="Cost" testid="stat-cost" value={t ? fmtUsd(t.cost_usd) : '—'} />
      </div>
      {data && (
        <div class="charts">
          <Chart
            title="Requests/s and errors"
            x={x}
            ys={[data.series.map((s) => s.rps), data.series.map((s) => s.rps * s.error_rate)]}
            series={[
              { label: 'req/s', color: '#2563eb' },
              { label: 'errors/s', color: '#dc2626' },
            ]}
          />
          <Chart
            title="Latency (ms)"
            x={x}
            ys={[data.series.map((s) => s.p50_ms), data.series.map((s) => s.p95_ms)]}
            series={[
              { label: 'p50', color: '#059669' },
              { label: 'p95', color: '#d97706' },
            ]}
          />
        </div>
      )}
      <Section title="By tenant">
        <GroupTable name="tenant" rows={(data?.by_tenant ?? []).map((r) => ({ ...r, name: r.tenant }))} />
      </Section>
      <Section title="By model">
        <GroupTable name="model" rows={(data?.by_model ?? []).map((r) => ({ ...r, name: r.model }))} />
      </Section>
      <p class="hint">
        Computed in the gateway process over a sliding window (this replica only); Prometheus is not needed.
      </p>
    </>
  );
}
