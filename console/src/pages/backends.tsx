/**
 * Backends: every model alias (pool) and its backends — health, in-flight and last error from
 * GET /admin/models, traffic and latency over the last minute from GET /admin/stats — every 3 s.
 */
import { api, type List, type ModelInfo, type Stats, type StatsRow } from '../api';
import { ErrorBanner, fmtMs, fmtNum, fmtPct, usePoll } from '../ui';

export function Backends() {
  const models = usePoll(() => api<List<ModelInfo>>('GET', '/admin/models'), 3000);
  const stats = usePoll(() => api<Stats>('GET', '/admin/stats?window=60&step=60'), 3000);
  const traffic = new Map<string, StatsRow>((stats.data?.by_backend ?? []).map((r) => [r.backend, r]));
  return (
    <>
      <h1>Backends</h1>
      <ErrorBanner error={models.error ?? stats.error} />
      <p class="muted">Traffic, latency and errors over the last minute, as this replica saw them.</p>
      {(models.data?.data ?? []).map((m) => (
        <section key={m.id} data-testid={`pool-${m.id}`}>
          <h2>
            {m.id} <span class="muted">({m.strategy})</span>
          </h2>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">backend</th>
                  <th scope="col">health</th>
                  <th scope="col">in flight</th>
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
                  return (
                    <tr key={b.id} data-testid={`backend-${b.id}`}>
                      <th scope="row">{b.id}</th>
                      <td>
                        <span class={b.healthy ? 'pill ok' : 'pill bad'}>{b.healthy ? 'up' : 'down'}</span>
                      </td>
                      <td>{b.in_flight}</td>
                      <td>{t ? fmtNum(t.rps, 2) : '0'}</td>
                      <td>{fmtMs(t?.p50_ms)}</td>
                      <td>{fmtMs(t?.p95_ms)}</td>
                      <td>{t ? fmtPct(t.error_rate) : '—'}</td>
                      <td>{b.provider}</td>
                      <td>{b.model}</td>
                      <td>{b.weight}</td>
                      <td class="wrap">{b.last_error ?? ''}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  );
}
