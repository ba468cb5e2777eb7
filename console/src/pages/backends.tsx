/**
 * Backends: every model alias (pool) and its backends — state (health checks, circuit breaker),
 * in-flight, latency EWMA and last error from GET /admin/models, traffic, p50/p95 and errors over
 * the last minute from GET /admin/stats — every 3 s.
 */
import { api, type List, type ModelInfo, type Stats, type StatsRow } from '../api';
import { ErrorBanner, fmtMs, fmtNum, fmtPct, fmtTime, usePoll } from '../ui';

const STATE_LABEL = {
  healthy: 'up',
  ejected: 'ejected',
  open: 'circuit open',
  half_open: 'half-open',
} as const;

export function Backends() {
  const models = usePoll(() => api<List<ModelInfo>>('GET', '/admin/models'), 3000);
  const stats = usePoll(() => api<Stats>('GET', '/admin/stats?window=60&step=60'), 3000);
  const traffic = new Map<string, StatsRow>((stats.data?.by_backend ?? []).map((r) => [r.backend, r]));
  return (
    <>
      <h1>Backends</h1>
      <ErrorBanner error={models.error ?? stats.error} />
      <p class="muted">Traffic, latency and errors over the last minute, as this replica saw them.</p>
      {(models.data?.data ?? []).map((m) =>
        m.split ? (
          <section key={m.id} data-testid={`pool-${m.id}`}>
            <h2>
              {m.id} <span class="muted">(A/B split)</span>
            </h2>
            <p>
              {m.split.map((v, i) => (
                <span key={v.model}>
                  {i > 0 ? ' · ' : ''}
                  {v.model}: weight {v.weight}
                </span>
              ))}
            </p>
          </section>
        ) : (
          <section key={m.id} data-testid={`pool-${m.id}`}>
            <h2>
              {m.id} <span class="muted">({m.strategy})</span>
            </h2>
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">backend</th>
                    <th scope="col">state</th>
                    <th scope="col">circuit</th>
                    <th scope="col">in flight</th>
                    <th scope="col" title="upstream sockets open (HTTP backends)">
                      connections
                    </th>
                    <th scope="col">latency (EWMA)</th>
                    <th scope="col">req/s</th>
                    <th scope="col">p50</th>
                    <th scope="col">p95</th>
                    <th scope="col">errors</th>
                    <th scope="col">provider</th>
                    <th scope="col">upstream model</th>
                    <th scope="col">weight</th>
                    <th scope="col">last error</th>
                  </tr>
                </thead>
                <tbody>
                  {m.backends.map((b) => {
                    const t = traffic.get(b.id);
                    const state = b.state ?? (b.healthy ? 'healthy' : 'ejected');
                    return (
                      <tr key={b.id} data-testid={`backend-${b.id}`}>
                        <th scope="row">{b.id}</th>
                        <td>
                          <span
                            class={state === 'healthy' ? 'pill ok' : 'pill bad'}
                            title={b.reason ?? undefined}
                          >
                            {STATE_LABEL[state]}
                          </span>
                        </td>
                        <td>
                          {b.circuit
                            ? `${b.circuit.state.replace('_', '-')}${b.circuit.consecutive_failures ? ` (${b.circuit.consecutive_failures} failures)` : ''}`
                            : '—'}
                        </td>
                        <td>{b.in_flight}</td>
                        <td>{b.upstream_connections ?? '—'}</td>
                        <td>{fmtMs(b.latency_ewma_ms)}</td>
                        <td>{t ? fmtNum(t.rps, 2) : '0'}</td>
                        <td>{fmtMs(t?.p50_ms)}</td>
                        <td>{fmtMs(t?.p95_ms)}</td>
                        <td>{t ? fmtPct(t.error_rate) : '—'}</td>
                        <td>{b.provider}</td>
                        <td>{b.model}</td>
                        <td>{b.weight}</td>
                        <td class="wrap">
                          {b.reason && state !== 'healthy' ? <div>{b.reason}</div> : null}
                          {b.last_error ?? ''}
                          {b.last_error_at ? <span class="muted"> ({fmtTime(b.last_error_at)})</span> : null}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </section>
        ),
      )}
    </>
  );
}
