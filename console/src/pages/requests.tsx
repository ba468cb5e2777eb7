/**
 * Request log: the latest finished requests (GET /admin/requests) with filters. `#/requests/<id>`
 * opens one request's details (the playground links there).
 */
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, qs, type RequestRecord } from '../api';
import { ErrorBanner, fmtInt, fmtMs, fmtTime, fmtUsd, usePoll } from '../ui';

interface Filters {
  tenant: string;
  model: string;
  status: string;
  request_id: string;
}
const EMPTY: Filters = { tenant: '', model: '', status: '', request_id: '' };

function Detail({ r }: { r: RequestRecord }) {
  return (
    <div class="detail" data-testid="request-detail">
      {r.error && (
        <p class="error detail-error" data-testid="request-error">
          <strong>
            {r.status} {r.error.code}
          </strong>
          : {r.error.message}
        </p>
      )}
      <dl>
        <dt>request id</dt>
        <dd>
          <code>{r.request_id}</code>
        </dd>
        <dt>correlation id</dt>
        <dd>
          <code>{r.correlation_id}</code>
        </dd>
        <dt>endpoint</dt>
        <dd>{r.endpoint}</dd>
        <dt>key</dt>
        <dd>{r.key_id ?? '—'}</dd>
        <dt>backend</dt>
        <dd>{r.backend ?? '—'}</dd>
        {r.fallback_model && (
          <>
            <dt>fallback</dt>
            <dd>answered by fallback model {r.fallback_model}</dd>
          </>
        )}
        {r.variant && (
          <>
            <dt>A/B variant</dt>
            <dd>{r.variant}</dd>
          </>
        )}
        <dt>time to first token</dt>
        <dd>{fmtMs(r.ttft_ms)}</dd>
        <dt>tokens</dt>
        <dd>
          {fmtInt(r.tokens_in)} in / {fmtInt(r.tokens_out)} out{r.tokens_estimated ? ' (estimated)' : ''}
          {r.partial ? ' — partial: the stream was cut short, billed for the output the client received' : ''}
        </dd>
        <dt>cache</dt>
        <dd>{r.cache_hit ?? 'miss'}</dd>
      </dl>
      {r.request_body !== undefined || r.response_body !== undefined ? (
        <>
          <h3>Request body (redacted)</h3>
          <pre>{r.request_body ?? ''}</pre>
          <h3>Response body (redacted)</h3>
          <pre>{r.response_body ?? ''}</pre>
        </>
      ) : (
        <p class="muted">Bodies are not stored (the audit configuration does not capture them).</p>
      )}
    </div>
  );
}

export function Requests({ selected }: { selected?: string | undefined }) {
  const only = (id: string | undefined): Filters => (id ? { ...EMPTY, request_id: id } : EMPTY);
  const [form, setForm] = useState<Filters>(only(selected));
  const [applied, setApplied] = useState<Filters>(only(selected));
  const [open, setOpen] = useState<string | undefined>(selected);
  // A link to one request (#/requests/<id>): show it alone, details open.
  useEffect(() => {
    if (!selected) return;
    setForm(only(selected));
    setApplied(only(selected));
    setOpen(selected);
  }, [selected]);
  const { data, error } = usePoll(
    () =>
      api<{ data: RequestRecord[]; capacity: number }>(
        'GET',
        `/admin/requests${qs({ ...applied, limit: 200 })}`,
      ),
    5000,
    [applied.tenant, applied.model, applied.status, applied.request_id],
  );
  // Labelled inputs; the placeholders are examples (styled as such), not values.
  const field = (name: keyof Filters, label: string, example: string) => (
    <label>
      {label}
      <input
        name={`filter-${name}`}
        value={form[name]}
        placeholder={`e.g. ${example}`}
        onInput={(e) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value })}
      />
    </label>
  );
  const rows = data?.data ?? [];
  return (
    <>
      <h1>Request log</h1>
      <form
        class="inline"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...form });
        }}
      >
        {field('tenant', 'Tenant', 'acme-corp')}
        {field('model', 'Model', 'default')}
        {field('status', 'Status', '429, 4xx or error')}
        {field('request_id', 'Request id (or prefix)', 'req_01a2…')}
        <button type="submit">Filter</button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setForm(EMPTY);
            setApplied(EMPTY);
            setOpen(undefined);
            if (selected) location.hash = '#/requests';
          }}
        >
          Clear
        </button>
      </form>
      <ErrorBanner error={error} />
      <p class="muted">
        {rows.length} shown; the gateway keeps the latest {data?.capacity ?? '…'} requests in memory.
      </p>
      <div class="table-wrap">
        <table data-testid="request-log">
          <thead>
            <tr>
              <th scope="col">request id</th>
              <th scope="col">status</th>
              <th scope="col">tenant</th>
              <th scope="col">model</th>
              <th scope="col">latency</th>
              <th scope="col">tokens</th>
              <th scope="col">cost</th>
              <th scope="col">time (UTC)</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <Fragment key={r.request_id}>
                <tr class={r.status >= 400 ? 'row-error' : ''}>
                  <th scope="row">
                    <button
                      type="button"
                      class="link"
                      aria-expanded={open === r.request_id}
                      onClick={() => setOpen(open === r.request_id ? undefined : r.request_id)}
                    >
                      {r.request_id}
                    </button>
                  </th>
                  <td title={r.error ? `${r.error.code}: ${r.error.message}` : undefined}>{r.status}</td>
                  <td>{r.tenant ?? '—'}</td>
                  <td>{r.model ?? '—'}</td>
                  <td>{fmtMs(r.latency_ms)}</td>
                  <td title={r.partial ? 'partial: billed for what was delivered' : undefined}>
                    {fmtInt(r.tokens_in + r.tokens_out)}
                    {r.partial ? ' (partial)' : ''}
                  </td>
                  <td>{fmtUsd(r.cost_usd)}</td>
                  <td>{fmtTime(r.time)}</td>
                </tr>
                {open === r.request_id && (
                  <tr>
                    <td colSpan={8} class="wrap">
                      <Detail r={r} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
