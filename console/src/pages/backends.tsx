/**
 * Backends: every model alias (pool) and its backends — state (health checks, circuit breaker),
 * in-flight, latency EWMA and last error from GET /admin/models, traffic, p50/p95 and errors over
 * the last minute from GET /admin/stats — every 3 s. A pool with fallbacks shows its chain and
 * which member answers now; errors are listed in full under the table (they can be long).
 */
import { api, type List, type ModelInfo, type Stats, type StatsRow } from '../api';
import { ErrorBanner, fmtMs, fmtNum, fmtPct, fmtTime, usePoll } from '../ui';

const STATE_LABEL = {
  healthy: 'up',
  ejected: 'ejected',
  open: 'circuit open',
  half_open: 'half-open',
} as const;

type BackendInfo = ModelInfo['backends'][number];
const stateOf = (b: BackendInfo): keyof typeof STATE_LABEL => b.state ?? (b.healthy ? 'healthy' : 'ejected');

/** The fallback chain (model → fallbacks) with the member that answers now marked, and what that means. */
function Chain({ m }: { m: ModelInfo }) {
  const chain = m.chain ?? [m.id];
  const serving = m.serving;
  const fallbacks = chain.length > 1;
  if (!fallbacks && serving && !serving.degraded && (m.fallback_for ?? []).length === 0) return null;
  return (
    <div class="chain" data-testid={`chain-${m.id}`}>
      {fallbacks && (
        <p>
          Fallback chain:{' '}
          {chain.map((alias, i) => (
            <span key={alias}>
              {i > 0 ? ' → ' : ''}
              <span
                class={serving?.model === alias ? 'chain-member serving' : 'chain-member'}
                aria-current={serving?.model === alias ? 'true' : undefined}
              >
                {alias}
              </span>
            </span>
          ))}
        </p>
      )}
      {serving === null || serving === undefined ? (
        <p class="callout bad" role="status" data-testid={`serving-${m.id}`}>
          No backend {fallbacks ? 'of the chain ' : ''}can take a request now: clients get 503 until one
          recovers.
        </p>
      ) : serving.fallback ? (
        <p class="callout warn" role="status" data-testid={`serving-${m.id}`}>
          Answering now: fallback <strong>{serving.model}</strong> ({serving.backends.join(', ')}) — no
          backend of {m.id} is in service.
          {serving.degraded ? ' Its backends are ejected by health checks but still tried.' : ''}
        </p>
      ) : serving.degraded ? (
        <p class="callout warn" role="status" data-testid={`serving-${m.id}`}>
          Every backend is ejected by health checks; requests still try {serving.backends.join(', ')}.
        </p>
      ) : (
        <p class="muted" data-testid={`serving-${m.id}`}>
          Answering now: its own backends ({serving.backends.join(', ')}).
        </p>
      )}
      {(m.fallback_for ?? []).length > 0 && (
        <p class="muted">Fallback for: {(m.fallback_for ?? []).join(', ')}.</p>
      )}
    </div>
  );
}

/** Why a backend is out of service, without repeating its last error (listed apart). */
function reasonOf(b: BackendInfo): string | null {
  const state = stateOf(b);
  if (state === 'healthy' || !b.reason) return null;
  const tail = b.last_error ? `: ${b.last_error}` : '';
  const reason = tail && b.reason.endsWith(tail) ? b.reason.slice(0, -tail.length) : b.reason;
  return state === 'ejected' ? `ejected: ${reason}` : reason;
}

/** Why each backend is out of service and its last error, in full (wrapped, never cut). */
function Problems({ backends }: { backends: BackendInfo[] }) {
  const rows = backends.filter((b) => b.last_error || reasonOf(b));
  if (rows.length === 0) return null;
  return (
    <ul class="problems" aria-label="Backend errors">
      {rows.map((b) => {
        const reason = reasonOf(b);
        return (
          <li key={b.id} data-testid={`problem-${b.id}`}>
            <strong>{b.id}</strong>
            {reason && <span> — {reason}</span>}
            {b.last_error && (
              <div>
                <span class="muted">
                  last error{b.last_error_at ? ` (${fmtTime(b.last_error_at)} UTC)` : ''}:
                </span>{' '}
                <span class="problem-text" data-testid={`last-error-${b.id}`}>
                  {b.last_error}
                </span>
              </div>
            )}
          </li>
        );
      })}
    </ul>
  );
}

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
              {m.split.map((v, i) => {
                const serving = m.variants?.find((x) => x.model === v.model)?.serving;
                return (
                  <span key={v.model}>
                    {i > 0 ? ' · ' : ''}
                    {v.model}: weight {v.weight}
                    {serving === null
                      ? ' (no backend can take a request: its callers get 503)'
                      : serving
                        ? ` (answering: ${serving.fallback ? `fallback ${serving.model}, ` : ''}${serving.backends.join(', ')})`
                        : ''}
                  </span>
                );
              })}
            </p>
          </section>
        ) : (
          <section key={m.id} data-testid={`pool-${m.id}`}>
            <h2>
              {m.id} <span class="muted">({m.strategy})</span>
            </h2>
            <Chain m={m} />
            <div class="table-wrap">
              <table class="backends">
                <thead>
                  <tr>
                    <th scope="col">backend</th>
                    <th scope="col">state</th>
                    <th scope="col">circuit</th>
                    <th scope="col">in flight</th>
                    <th scope="col" title="upstream sockets open (HTTP backends)">
                      conns
                    </th>
                    <th scope="col">latency (EWMA)</th>
                    <th scope="col">req/s</th>
                    <th scope="col">p50</th>
                    <th scope="col">p95</th>
                    <th scope="col">errors</th>
                    <th scope="col">provider</th>
                    <th scope="col">upstream model</th>
                    <th scope="col">weight</th>
                  </tr>
                </thead>
                <tbody>
                  {m.backends.map((b) => {
                    const t = traffic.get(b.id);
                    const state = stateOf(b);
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
                        <td class="wrap-any">{b.model}</td>
                        <td>{b.weight}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            <Problems backends={m.backends} />
          </section>
        ),
      )}
    </>
  );
}
