/** The Portico web console: login with the admin token, then five pages over the admin API. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, clearToken, getToken, setToken, setUnauthorizedHandler } from './api';
import { Overview } from './pages/overview';
import { TenantDetail, Tenants } from './pages/tenants';
import { Backends } from './pages/backends';
import { Requests } from './pages/requests';
import { Playground } from './pages/playground';
import './style.css';

const PAGES = [
  ['overview', 'Overview'],
  ['tenants', 'Tenants'],
  ['backends', 'Backends'],
  ['requests', 'Request log'],
  ['playground', 'Playground'],
] as const;

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Login({ onLogin }: { onLogin: () => void }) {
  const [token, setTok] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api('GET', '/admin/stats?window=5&step=5', undefined, token.trim());
      setToken(token.trim());
      onLogin();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>Portico console</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="admin-token">Admin token</label>
        <input
          id="admin-token"
          name="admin-token"
          type="password"
          autocomplete="off"
          required
          value={token}
          onInput={(e) => setTok((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <p class="hint">
          The token is kept in this tab's session storage only. It is <code>admin.token</code> in the config
          (or the one printed at start-up).
        </p>
      </form>
    </main>
  );
}

function App() {
  const [authed, setAuthed] = useState(getToken() !== null);
  const hash = useHash();
  useEffect(() => {
    setUnauthorizedHandler(() => {
      clearToken();
      setAuthed(false);
    });
  }, []);
  if (!authed) return <Login onLogin={() => setAuthed(true)} />;
  const parts = hash.replace(/^#\/?/, '').split('/');
  const page = PAGES.some(([p]) => p === parts[0]) ? (parts[0] ?? 'overview') : 'overview';
  const sub = parts[1] ? decodeURIComponent(parts[1]) : undefined;
  let body;
  if (page === 'tenants') body = sub ? <TenantDetail id={sub} /> : <Tenants />;
  else if (page === 'backends') body = <Backends />;
  else if (page === 'requests') body = <Requests selected={sub} />;
  else if (page === 'playground') body = <Playground />;
  else body = <Overview />;
  return (
    <>
      <header>
        <a class="brand" href="#/overview">
          Portico
        </a>
        <nav aria-label="Console pages">
          {PAGES.map(([p, label]) => (
            <a key={p} href={`#/${p}`} aria-current={p === page ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button
          class="secondary"
          type="button"
          onClick={() => {
            clearToken();
            setAuthed(false);
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main">{body}</main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
