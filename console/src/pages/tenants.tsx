/** Tenants: list (and create), detail with system prompt, keys, limits/quotas with use, usage charts. */
import { useState } from 'preact/hooks';
import { api, qs, type Key, type List, type QuotaUse, type Tenant, type UsageRow } from '../api';
import { Chart, ErrorBanner, fmtInt, fmtTime, fmtUsd, Section, usePoll } from '../ui';

const ID_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const MAX_PROMPT = 100_000;

export function Tenants() {
  const { data, error, reload } = usePoll(() => api<List<Tenant>>('GET', '/admin/tenants'), 0);
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const [formError, setFormError] = useState<string | undefined>();
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!ID_RE.test(id)) {
      setFormError('Tenant id: 1-63 lower-case letters, digits, ".", "_" or "-".');
      return;
    }
    try {
      await api('POST', '/admin/tenants', { id, ...(name ? { display_name: name } : {}) });
      setFormError(undefined);
      location.hash = `#/tenants/${encodeURIComponent(id)}`;
    } catch (err) {
      setFormError((err as Error).message);
    }
  };
  return (
    <>
      <h1>Tenants</h1>
      <ErrorBanner error={error} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">id</th>
              <th scope="col">name</th>
              <th scope="col">company</th>
              <th scope="col">models</th>
              <th scope="col">priority</th>
              <th scope="col">source</th>
            </tr>
          </thead>
          <tbody>
            {(data?.data ?? []).map((t) => (
              <tr key={t.id}>
                <th scope="row">
                  <a href={`#/tenants/${encodeURIComponent(t.id)}`}>{t.id}</a>
                </th>
                <td>{t.display_name}</td>
                <td>{t.company ?? ''}</td>
                <td>{t.allowed_models.join(', ')}</td>
                <td>{t.priority}</td>
                <td>{t.read_only ? <span class="badge">config file (read-only)</span> : 'admin API'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Section title="New tenant">
        <form class="inline" onSubmit={(e) => void create(e)}>
          <label>
            Id
            <input
              name="tenant-id"
              value={id}
              required
              pattern="[a-z0-9][a-z0-9._\-]{0,62}"
              onInput={(e) => setId((e.target as HTMLInputElement).value)}
            />
          </label>
          <label>
            Display name
            <input
              name="tenant-name"
              value={name}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
            />
          </label>
          <button type="submit">Create tenant</button>
          <button type="button" class="secondary" onClick={reload}>
            Refresh
          </button>
        </form>
        <ErrorBanner error={formError} />
      </Section>
    </>
  );
}

function QuotaLine({ label, use, kind }: { label: string; use: QuotaUse; kind: 'tokens' | 'requests' }) {
  const used = kind === 'tokens' ? use.usedTokens : use.usedRequests;
  const reserved = kind === 'tokens' ? use.reservedTokens : use.reservedRequests;
  const limit = kind === 'tokens' ? use.limitTokens : use.limitRequests;
  const pct = limit ? Math.min(100, (used / limit) * 100) : 0;
  return (
    <tr>
      <th scope="row">{label}</th>
      <td>
        {fmtInt(used)}
        {reserved > 0 ? ` (+${fmtInt(reserved)} reserved)` : ''}
      </td>
      <td>{limit ? fmtInt(limit) : 'no limit'}</td>
      <td>
        {limit ? (
          <meter min={0} max={100} value={pct} aria-label={`${label} used`}>
            {pct.toFixed(0)}%
          </meter>
        ) : (
          ''
        )}
      </td>
      <td>{fmtTime(use.resetAt)}</td>
    </tr>
  );
}

const LIMIT_FIELDS = [
  ['limits', 'requests_per_second', 'Requests/s', false],
  ['limits', 'burst', 'Burst', true],
  ['limits', 'tokens_per_minute', 'Tokens/min', true],
  ['limits', 'max_in_flight', 'Max in flight', true],
  ['quota', 'daily_tokens', 'Tokens/day', true],
  ['quota', 'monthly_tokens', 'Tokens/month', true],
  ['quota', 'daily_requests', 'Requests/day', true],
  ['quota', 'monthly_requests', 'Requests/month', true],
] as const;

/** Limits and quotas of an API tenant: empty = no limit. */
function LimitsEditor({ tenant, onSaved }: { tenant: Tenant; onSaved: () => void }) {
  const initial: Record<string, string> = {};
  for (const [group, name] of LIMIT_FIELDS) {
    const v = (tenant[group] as Record<string, number | undefined> | null)?.[name];
    initial[name] = v === undefined ? '' : String(v);
  }
  const [values, setValues] = useState(initial);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | undefined>();
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    const body: { limits: Record<string, number>; quota: Record<string, number> } = { limits: {}, quota: {} };
    for (const [group, name, label, integer] of LIMIT_FIELDS) {
      const raw = (values[name] ?? '').trim();
      if (raw === '') continue;
      const n = Number(raw);
      if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
        setMsg({
          ok: false,
          text: `${label}: enter a positive ${integer ? 'whole ' : ''}number, or leave it empty.`,
        });
        return;
      }
      body[group][name] = n;
    }
    try {
      await api('PATCH', `/admin/tenants/${encodeURIComponent(tenant.id)}`, body);
      setMsg({ ok: true, text: 'Saved. New requests are admitted under these limits.' });
      onSaved();
    } catch (err) {
      setMsg({ ok: false, text: (err as Error).message });
    }
  };
  return (
    <form onSubmit={(e) => void save(e)}>
      <div class="inline">
        {LIMIT_FIELDS.map(([, name, label]) => (
          <label key={name}>
            {label}
            <input
              name={`limit-${name}`}
              inputMode="decimal"
              size={10}
              placeholder="no limit"
              value={values[name] ?? ''}
              onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLInputElement).value })}
            />
          </label>
        ))}
      </div>
      <button type="submit">Save limits</button>
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role="status">
          {msg.text}
        </p>
      )}
    </form>
  );
}

function PromptEditor({ tenant, onSaved }: { tenant: Tenant; onSaved: () => void }) {
  const [text, setText] = useState(tenant.system_prompt);
  const [policy, setPolicy] = useState(tenant.prompt_policy);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | undefined>();
  const tooLong = text.length > MAX_PROMPT;
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (tooLong) return;
    try {
      await api('PATCH', `/admin/tenants/${encodeURIComponent(tenant.id)}`, {
        system_prompt: text,
        prompt_policy: policy,
      });
      setMsg({ ok: true, text: 'Saved. New requests use this prompt.' });
      onSaved();
    } catch (err) {
      setMsg({ ok: false, text: (err as Error).message });
    }
  };
  if (tenant.read_only) {
    return (
      <>
        <p class="badge" data-testid="read-only-note">
          Declared in the config file: read-only here. Edit the file (it is reloaded automatically).
        </p>
        <pre class="prompt">{tenant.system_prompt || '(none)'}</pre>
        <p class="muted">Prompt policy: {tenant.prompt_policy}</p>
      </>
    );
  }
  return (
    <form onSubmit={(e) => void save(e)}>
      <label for="system-prompt">System prompt</label>
      <textarea
        id="system-prompt"
        rows={5}
        value={text}
        aria-invalid={tooLong}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
      />
      <div class={tooLong ? 'error' : 'muted'}>
        {fmtInt(text.length)} / {fmtInt(MAX_PROMPT)} characters
      </div>
      <label>
        Policy{' '}
        <select value={policy} onChange={(e) => setPolicy((e.target as HTMLSelectElement).value)}>
          <option value="prepend">prepend (before the client's system message)</option>
          <option value="replace">replace (drop the client's system messages)</option>
          <option value="none">none</option>
        </select>
      </label>
      <button type="submit" disabled={tooLong}>
        Save prompt
      </button>
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role="status">
          {msg.text}
        </p>
      )}
    </form>
  );
}

function Keys({ tenant }: { tenant: Tenant }) {
  const { data, error, reload } = usePoll(
    () => api<List<Key>>('GET', `/admin/tenants/${encodeURIComponent(tenant.id)}/keys`),
    0,
    [tenant.id],
  );
  const [label, setLabel] = useState('');
  const [created, setCreated] = useState<string | undefined>();
  const [actionError, setActionError] = useState<string | undefined>();
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      const k = await api<{ key: string }>('POST', `/admin/tenants/${encodeURIComponent(tenant.id)}/keys`, {
        label,
      });
      setCreated(k.key);
      setLabel('');
      setActionError(undefined);
      reload();
    } catch (err) {
      setActionError((err as Error).message);
    }
  };
  const revoke = async (id: string): Promise<void> => {
    if (!confirm(`Revoke key ${id}? Clients using it are refused at once.`)) return;
    try {
      await api('POST', `/admin/keys/${encodeURIComponent(id)}/revoke`);
      setActionError(undefined);
      reload();
    } catch (err) {
      setActionError((err as Error).message);
    }
  };
  return (
    <>
      <ErrorBanner error={error ?? actionError} />
      {created && (
        <div class="once" role="status">
          <p>New key — shown only once, store it now:</p>
          <code data-testid="new-key">{created}</code>{' '}
          <button
            type="button"
            class="secondary"
            onClick={() => void navigator.clipboard?.writeText(created)}
          >
            Copy
          </button>{' '}
          <button type="button" class="secondary" onClick={() => setCreated(undefined)}>
            Done
          </button>
        </div>
      )}
      <div class="table-wrap">
        <table data-testid="keys">
          <thead>
            <tr>
              <th scope="col">id</th>
              <th scope="col">label</th>
              <th scope="col">prefix</th>
              <th scope="col">created</th>
              <th scope="col">state</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {(data?.data ?? []).map((k) => (
              <tr key={k.id} data-testid={`key-${k.id}`}>
                <th scope="row">{k.id}</th>
                <td>{k.label}</td>
                <td>{k.prefix ? <code>{k.prefix}…</code> : ''}</td>
                <td>{fmtTime(k.created_at)}</td>
                <td>
                  {k.source === 'config'
                    ? 'config file'
                    : k.revoked_at
                      ? `revoked ${fmtTime(k.revoked_at)}`
                      : k.expires_at
                        ? `expires ${fmtTime(k.expires_at)}`
                        : 'active'}
                </td>
                <td>
                  {k.source === 'api' && !k.revoked_at && (
                    <button type="button" class="danger" onClick={() => void revoke(k.id)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form class="inline" onSubmit={(e) => void create(e)}>
        <label>
          Label
          <input
            name="key-label"
            value={label}
            maxLength={200}
            onInput={(e) => setLabel((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Create key</button>
      </form>
    </>
  );
}

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function UsageCharts({ tenant }: { tenant: Tenant }) {
  const from = isoDay(new Date(Date.now() - 29 * 86_400_000));
  const byDay = usePoll(
    () => api<List<UsageRow>>('GET', `/admin/usage${qs({ tenant: tenant.id, group_by: 'day', from })}`),
    10_000,
    [tenant.id],
  );
  const byMonth = usePoll(
    () => api<List<UsageRow>>('GET', `/admin/usage${qs({ tenant: tenant.id, group_by: 'month' })}`),
    10_000,
    [tenant.id],
  );
  // Every day of the last 30, zero where nothing was used.
  const days: string[] = [];
  for (let i = 29; i >= 0; i--) days.push(isoDay(new Date(Date.now() - i * 86_400_000)));
  const rows = new Map((byDay.data?.data ?? []).map((r) => [r.group, r]));
  const x = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const months = byMonth.data?.data ?? [];
  const tokens = days.map((d) => (rows.get(d)?.tokens_in ?? 0) + (rows.get(d)?.tokens_out ?? 0));
  const cost = days.map((d) => rows.get(d)?.cost_usd ?? 0);
  const loaded = byDay.data !== undefined;
  return (
    <>
      <ErrorBanner error={byDay.error ?? byMonth.error} />
      <div class="charts">
        <div>
          <Chart
            title="Tokens by day (in + out)"
            x={x}
            ys={[tokens]}
            series={[{ label: 'tokens', color: '#2563eb', bars: true }]}
          />
          {loaded && tokens.every((v) => v === 0) && (
            <p class="hint" data-testid="no-tokens">
              No tokens used in the last 30 days.
            </p>
          )}
        </div>
        <div>
          <Chart
            title="Cost by day (USD)"
            x={x}
            ys={[cost]}
            series={[{ label: 'cost', color: '#059669', bars: true }]}
          />
          {loaded && cost.every((v) => v === 0) && (
            <p class="hint" data-testid="no-cost">
              No cost yet in the last 30 days
              {tokens.some((v) => v > 0)
                ? ' (no pricing configured for the models used, or only cache hits)'
                : ''}
              .
            </p>
          )}
        </div>
      </div>
      <div class="table-wrap">
        <table data-testid="usage-by-month">
          <thead>
            <tr>
              <th scope="col">month</th>
              <th scope="col">requests</th>
              <th scope="col">tokens in</th>
              <th scope="col">tokens out</th>
              <th
                scope="col"
                title="requests cut short (cancelled or broken-off streams), billed for what was delivered"
              >
                partial
              </th>
              <th scope="col">cost</th>
            </tr>
          </thead>
          <tbody>
            {months.length === 0 && (
              <tr>
                <td colSpan={6} class="muted">
                  No usage recorded yet.
                </td>
              </tr>
            )}
            {months.map((m) => (
              <tr key={m.group}>
                <th scope="row">{m.group}</th>
                <td>{fmtInt(m.requests)}</td>
                <td>{fmtInt(m.tokens_in)}</td>
                <td>{fmtInt(m.tokens_out)}</td>
                <td>{fmtInt(m.partial ?? 0)}</td>
                <td>{fmtUsd(m.cost_usd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function DeleteTenant({ tenant }: { tenant: Tenant }) {
  const [error, setError] = useState<string | undefined>();
  const remove = async (): Promise<void> => {
    if (!confirm(`Delete tenant ${tenant.id} and all its keys? Its usage history stays in the ledger.`))
      return;
    try {
      await api('DELETE', `/admin/tenants/${encodeURIComponent(tenant.id)}`);
      location.hash = '#/tenants';
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Section title="Delete">
      <button type="button" class="danger" onClick={() => void remove()}>
        Delete tenant
      </button>
      <ErrorBanner error={error} />
    </Section>
  );
}

export function TenantDetail({ id }: { id: string }) {
  const {
    data: t,
    error,
    reload,
  } = usePoll(() => api<Tenant>('GET', `/admin/tenants/${encodeURIComponent(id)}`), 0, [id]);
  if (!t)
    return (
      <>
        <h1>Tenant {id}</h1>
        <ErrorBanner error={error} />
      </>
    );
  const l = t.limits ?? {};
  return (
    <>
      <p>
        <a href="#/tenants">← Tenants</a>
      </p>
      <h1>
        {t.display_name} <span class="muted">({t.id})</span>
      </h1>
      <ErrorBanner error={error} />
      <p class="muted">
        {t.company ? `${t.company} · ` : ''}
        models: {t.allowed_models.join(', ')} · priority {t.priority} ·{' '}
        {t.read_only ? 'config file' : 'admin API'}
      </p>
      <Section title="System prompt">
        <PromptEditor key={t.id} tenant={t} onSaved={reload} />
      </Section>
      <Section title="Keys">
        <Keys tenant={t} />
      </Section>
      <Section title="Limits and quotas">
        {!t.read_only && <LimitsEditor key={t.id} tenant={t} onSaved={reload} />}
        <p>
          Requests/s: {l.requests_per_second ?? 'no limit'} · burst: {l.burst ?? '—'} · tokens/min:{' '}
          {l.tokens_per_minute ?? 'no limit'} · max in flight: {l.max_in_flight ?? 'no limit'} · max tokens
          per request: {t.max_tokens_cap ?? 'no cap'}
        </p>
        {t.usage && t.quota && Object.keys(t.quota).length > 0 ? (
          <div class="table-wrap">
            <table data-testid="quotas">
              <thead>
                <tr>
                  <th scope="col">quota</th>
                  <th scope="col">used</th>
                  <th scope="col">limit</th>
                  <th scope="col">use</th>
                  <th scope="col">resets (UTC)</th>
                </tr>
              </thead>
              <tbody>
                <QuotaLine label={`Tokens today (${t.usage.day.windowId})`} use={t.usage.day} kind="tokens" />
                <QuotaLine label="Requests today" use={t.usage.day} kind="requests" />
                <QuotaLine
                  label={`Tokens this month (${t.usage.month.windowId})`}
                  use={t.usage.month}
                  kind="tokens"
                />
                <QuotaLine label="Requests this month" use={t.usage.month} kind="requests" />
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted" data-testid="quotas">
            No quotas on this tenant (usage below comes from the ledger).
          </p>
        )}
      </Section>
      <Section title="Usage and cost">
        <UsageCharts tenant={t} />
      </Section>
      {!t.read_only && <DeleteTenant tenant={t} />}
    </>
  );
}
