/** Backends: every model alias (pool) and its backends, refreshed every 3 s. */
import { api, type List, type ModelInfo } from '../api';
import { ErrorBanner, usePoll } from '../ui';

export function Backends() {
  const { data, error } = usePoll(() => api<List<ModelInfo>>('GET', '/admin/models'), 3000);
  return (
    <>
      <h1>Backends</h1>
      <ErrorBanner error={error} />
      {(data?.data ?? []).map((m) => (
        <section key={m.id} data-testid={`pool-${m.id}`}>
          <h2>
            {m.id} <span class="muted">({m.strategy})</span>
          </h2>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">backend</th>
                  <th scope="col">provider</th>
                  <th scope="col">upstream model</th>
                  <th scope="col">weight</th>
                  <th scope="col">health</th>
                  <th scope="col">in flight</th>
                  <th scope="col">last error</th>
                </tr>
              </thead>
              <tbody>
                {m.backends.map((b) => (
                  <tr key={b.id}>
                    <th scope="row">{b.id}</th>
                    <td>{b.provider}</td>
                    <td>{b.model}</td>
                    <td>{b.weight}</td>
                    <td>
                      <span class={b.healthy ? 'pill ok' : 'pill bad'}>{b.healthy ? 'up' : 'down'}</span>
                    </td>
                    <td>{b.in_flight}</td>
                    <td class="wrap">{b.last_error ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  );
}
