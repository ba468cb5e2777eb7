/** Request log: the latest finished requests (GET /admin/requests) with filters. */
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
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

export function Requests() {
  const [form, setForm] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [open, setOpen] = useState<string | undefined>();
  const { data, error } = usePoll(
    () =>
      api<{ data: RequestRecord[]; capacity: number }>(
        'GET',
        `/admin/requests${qs({ ...applied, limit: 200 })}`,
      ),
    5000,
    [applied.tenant, applied.model, applied.status, applied.request_id],
  );
  const field = (name: keyof Filters, label: string, placeholder: string) => (
    <label>
      {label}
      <input
        name={`filter-${name}`}
        value={form[name]}
        placeholder={placeholder}
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
        {field('status', 'Status', '200, 4xx, error')}
        {field('request_id', 'Request id', 'req_…')}
        <button type="submit">Filter</button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setForm(EMPTY);
            setApplied(EMPTY);
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
                  <td>{r.status}</td>
                  <td>{r.tenant ?? '—'}</td>
                  <td>{r.model ?? '—'}</td>
                  <td>{fmtMs(r.latency_ms)}</td>
                  <td>{fmtInt(r.tokens_in + r.tokens_out)}</td>
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
