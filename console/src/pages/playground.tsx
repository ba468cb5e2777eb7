/**
 * Playground: one question, two sides (tenant + model each), both answers streamed side by side.
 * Each side is a POST /admin/playground that runs the real pipeline as the chosen tenant; the
 * numbers under each answer come from the stream (tokens) and the request log (latency, cost).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  api,
  ApiError,
  streamPlayground,
  type List,
  type ModelInfo,
  type RequestRecord,
  type Tenant,
  type Usage,
} from '../api';
import { ErrorBanner, fmtInt, fmtMs, fmtUsd } from '../ui';

interface Side {
  tenant: string;
  model: string;
  /** Sticky key for an A/B split (which variant answers). */
  user: string;
}
interface Result {
  text: string;
  state: 'idle' | 'streaming' | 'done' | 'error';
  error?: string;
  usage?: Usage;
  firstTokenMs?: number | null;
  totalMs?: number;
  record?: RequestRecord;
  requestId?: string;
  variant?: string | null;
}
const IDLE: Result = { text: '', state: 'idle' };

async function recordOf(id: string): Promise<RequestRecord | undefined> {
  // The gateway logs the request as the stream ends; allow it a moment.
  for (let i = 0; i < 5; i++) {
    try {
      return await api<RequestRecord>('GET', `/admin/requests/${encodeURIComponent(id)}`);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return undefined;
}

function SidePicker({
  n,
  side,
  setSide,
  tenants,
  models,
}: {
  n: number;
  side: Side;
  setSide: (s: Side) => void;
  tenants: Tenant[];
  models: ModelInfo[];
}) {
  return (
    <fieldset>
      <legend>{n === 0 ? 'Left' : 'Right'}</legend>
      <label>
        Tenant
        <select
          name={`tenant-${n}`}
          value={side.tenant}
          onChange={(e) => setSide({ ...side, tenant: (e.target as HTMLSelectElement).value })}
        >
          {tenants.map((t) => (
            <option key={t.id} value={t.id}>
              {t.display_name} ({t.id})
            </option>
          ))}
        </select>
      </label>
      <label>
        Model
        <select
          name={`model-${n}`}
          value={side.model}
          onChange={(e) => setSide({ ...side, model: (e.target as HTMLSelectElement).value })}
        >
          <option value="">tenant default</option>
          {models.map((m) => (
            <option key={m.id} value={m.id} disabled={!m.split && m.backends.length === 0}>
              {m.split ? `${m.id} (A/B: ${m.split.map((v) => v.model).join(' / ')})` : m.id}
            </option>
          ))}
        </select>
      </label>
      {models.find((m) => m.id === side.model)?.split && (
        <label>
          A/B user (sticky)
          <input
            name={`user-${n}`}
            value={side.user}
            placeholder="any id"
            onInput={(e) => setSide({ ...side, user: (e.target as HTMLInputElement).value })}
          />
        </label>
      )}
    </fieldset>
  );
}

function Answer({ n, r }: { n: number; r: Result }) {
  return (
    <div class="answer" data-testid={`answer-${n}`} data-state={r.state} aria-busy={r.state === 'streaming'}>
      <div class="answer-text" aria-live="polite">
        {r.text || (r.state === 'idle' ? <span class="muted">The answer appears here.</span> : '')}
      </div>
      {r.error && (
        <p class="error" role="alert">
          {r.error}
        </p>
      )}
      <dl class="answer-stats">
        <dt>first token</dt>
        <dd>{fmtMs(r.firstTokenMs)}</dd>
        <dt>latency</dt>
        <dd data-testid={`latency-${n}`}>{fmtMs(r.record?.latency_ms ?? r.totalMs)}</dd>
        <dt>tokens</dt>
        <dd data-testid={`tokens-${n}`}>
          {r.usage ? `${fmtInt(r.usage.prompt_tokens)} in / ${fmtInt(r.usage.completion_tokens)} out` : '—'}
        </dd>
        <dt>cost</dt>
        <dd data-testid={`cost-${n}`}>{r.record ? fmtUsd(r.record.cost_usd) : '—'}</dd>
        <dt>backend</dt>
        <dd>{r.record?.backend ?? '—'}</dd>
        {r.variant && (
          <>
            <dt>A/B variant</dt>
            <dd data-testid={`variant-${n}`}>{r.variant}</dd>
          </>
        )}
        <dt>request</dt>
        <dd>
          {r.requestId ? (
            <a href={`#/requests/${encodeURIComponent(r.requestId)}`} data-testid={`request-link-${n}`}>
              {r.requestId}
            </a>
          ) : (
            '—'
          )}
        </dd>
      </dl>
    </div>
  );
}

export function Playground() {
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [models, setModels] = useState<ModelInfo[]>([]);
  const [sides, setSides] = useState<[Side, Side]>([
    { tenant: '', model: '', user: '' },
    { tenant: '', model: '', user: '' },
  ]);
  const [question, setQuestion] = useState('');
  const [results, setResults] = useState<[Result, Result]>([IDLE, IDLE]);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    void Promise.all([
      api<List<Tenant>>('GET', '/admin/tenants'),
      api<List<ModelInfo>>('GET', '/admin/models'),
    ])
      .then(([t, m]) => {
        setTenants(t.data);
        setModels(m.data);
        setSides([
          { tenant: t.data[0]?.id ?? '', model: '', user: '' },
          { tenant: t.data[1]?.id ?? t.data[0]?.id ?? '', model: '', user: '' },
        ]);
      })
      .catch((e: unknown) => setError((e as Error).message));
  }, []);
  const busy = results.some((r) => r.state === 'streaming');
  const abort = useRef<AbortController | null>(null);
  useEffect(() => () => abort.current?.abort(), []);

  const runSide = async (i: 0 | 1, side: Side, signal: AbortSignal): Promise<void> => {
    const update = (f: (r: Result) => Result): void =>
      setResults((prev) => {
        const next: [Result, Result] = [prev[0], prev[1]];
        next[i] = f(prev[i]);
        return next;
      });
    const started = performance.now();
    try {
      const { requestId, variant, firstByteMs } = await streamPlayground(
        {
          tenant: side.tenant,
          ...(side.model ? { model: side.model } : {}),
          ...(side.user.trim() ? { user: side.user.trim() } : {}),
          question,
        },
        {
          onDelta: (t) => update((r) => ({ ...r, text: r.text + t })),
          onUsage: (u) => update((r) => ({ ...r, usage: u })),
        },
        signal,
      );
      const totalMs = performance.now() - started;
      const record = requestId ? await recordOf(requestId) : undefined;
      update((r) => ({
        ...r,
        state: 'done',
        firstTokenMs: firstByteMs,
        totalMs,
        requestId,
        variant,
        ...(record ? { record } : {}),
      }));
    } catch (e) {
      const stopped = signal.aborted;
      const requestId = e instanceof ApiError ? (e.requestId ?? undefined) : undefined;
      update((r) => ({
        ...r,
        state: 'error',
        error: stopped ? 'Stopped.' : (e as Error).message,
        ...(requestId ? { requestId } : {}),
      }));
    }
  };

  const run = (e: Event): void => {
    e.preventDefault();
    if (!question.trim()) return;
    setResults([
      { text: '', state: 'streaming' },
      { text: '', state: 'streaming' },
    ]);
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    void runSide(0, sides[0], controller.signal);
    void runSide(1, sides[1], controller.signal);
  };

  return (
    <>
      <h1>Playground</h1>
      <p class="muted">
        Ask both sides the same question. Each side runs as its tenant through the full pipeline (limits,
        quotas, prompt, routing, accounting).
      </p>
      <ErrorBanner error={error} />
      <form onSubmit={run}>
        <div class="sides">
          {[0, 1].map((n) => (
            <SidePicker
              key={n}
              n={n}
              side={sides[n as 0 | 1]}
              setSide={(s) => setSides(n === 0 ? [s, sides[1]] : [sides[0], s])}
              tenants={tenants}
              models={models}
            />
          ))}
        </div>
        <label for="question">Question</label>
        <textarea
          id="question"
          rows={3}
          required
          maxLength={20_000}
          value={question}
          onInput={(e) => setQuestion((e.target as HTMLTextAreaElement).value)}
        />
        <button type="submit" disabled={busy || !question.trim()}>
          Ask both
        </button>{' '}
        {busy && (
          <button type="button" class="secondary" onClick={() => abort.current?.abort()}>
            Stop
          </button>
        )}
      </form>
      <div class="sides">
        <Answer n={0} r={results[0]} />
        <Answer n={1} r={results[1]} />
      </div>
    </>
  );
}
