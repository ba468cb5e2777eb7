/**
 * Drills: the seeds' failure demos, run against a live gateway whose backends are `portico sim`
 * servers (their faults are switched on and off through PATCH /sim/config). Each drill changes one
 * thing, drives a little traffic, checks how the platform behaved, prints what happened, and puts
 * the simulator back as it was. Bounded in requests and time.
 *
 * - slow-startup: the backend answers like a model still loading (seconds before the first byte).
 *   Expect: no hang and no 500 — each request either succeeds late or gets 504 upstream_timeout
 *   at the model's time limit; /health stays up.
 * - quota-rejection: a tenant spends its daily request quota. Expect: 429 insufficient_quota with
 *   x-should-retry: false, and the rejected request never reaches the backend.
 * - upstream-timeout: the backend hangs. Expect: 504 upstream_timeout within the backend's timeout
 *   (plus slack), not a hang.
 * - backend-down: one backend of a two-backend pool fails every request. Expect: no client errors
 *   (retries move to the healthy backend), the failing backend's circuit opens, and it is
 *   readmitted once it recovers.
 */

export const DRILLS = ['slow-startup', 'quota-rejection', 'upstream-timeout', 'backend-down'] as const;
export type DrillName = (typeof DRILLS)[number];

export interface DrillTarget {
  /** Gateway base URL, e.g. http://127.0.0.1:8080 */
  gateway: string;
  /** A tenant key with access to the drill models. */
  key: string;
  /** A key whose tenant has a small daily request quota (quota-rejection). */
  quotaKey: string;
  adminToken: string;
  /** Control URLs of the simulators: primary (used by every drill) and secondary (backend-down). */
  simA: string;
  simB: string;
  /** Model aliases the drill config defines. */
  models: { slow: string; timeout: string; pool: string; quota: string };
}

export interface DrillResult {
  drill: DrillName;
  passed: boolean;
  steps: string[];
  seconds: number;
}

interface Answer {
  status: number;
  ms: number;
  body: { error?: { code?: string; message?: string } } & Record<string, unknown>;
  headers: Headers;
}

/** Why a fetch failed, in a few words: "ECONNREFUSED", "timed out", ... */
function cause(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'timed out';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** fetch() whose connection errors name the URL. */
async function call(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    throw new Error(`cannot reach ${url}: ${cause(err)}`, { cause: err });
  }
}

const START_HINT =
  'start it with `portico start --config examples/drills/portico.yaml` (and two simulators: `portico sim --port 9101`, `portico sim --port 9102`; see docs/drills.md)';

/**
 * Check the set-up the drills need before running them: the gateway is up and runs the drill
 * config (it knows the drill keys and models), the admin token is its, the simulators answer.
 * Returns one line saying what is wrong, or null.
 */
export async function preflight(t: DrillTarget, drills: readonly DrillName[]): Promise<string | null> {
  try {
    await call(`${t.gateway}/health`, { signal: AbortSignal.timeout(5_000) });
  } catch (err) {
    return `${(err as Error).message}: is the gateway running? ${START_HINT}`;
  }
  const keys = [t.key, ...(drills.includes('quota-rejection') ? [t.quotaKey] : [])];
  for (const key of keys) {
    const res = await call(`${t.gateway}/v1/models`, {
      headers: { authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status === 401)
      return `the gateway at ${t.gateway} does not know the drill's keys (401 invalid_api_key for ${key.slice(0, 12)}…): it is running another config; ${START_HINT}`;
    if (res.ok) {
      const ids = ((await res.json()) as { data?: Array<{ id: string }> }).data?.map((m) => m.id) ?? [];
      const want = key === t.key ? [t.models.slow, t.models.timeout, t.models.pool] : [t.models.quota];
      const missing = want.filter((m) => !ids.includes(m));
      if (missing.length)
        return `the gateway at ${t.gateway} has no model ${missing.join(', ')} for the drill keys: it is running another config; ${START_HINT}`;
    }
  }
  if (drills.includes('backend-down')) {
    const res = await call(`${t.gateway}/admin/backends`, {
      headers: { authorization: `Bearer ${t.adminToken}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status === 401 || res.status === 403)
      return `the gateway at ${t.gateway} refused the admin token (${res.status}): pass the token it was started with (--admin-token or PORTICO_ADMIN_TOKEN)`;
  }
  const sims = [
    ['A', t.simA, 9101],
    ...(drills.includes('backend-down') ? [['B', t.simB, 9102] as const] : []),
  ] as const;
  for (const [name, url, port] of sims) {
    try {
      const res = await call(`${url}/sim/config`, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok)
        return `simulator ${name} at ${url} answered ${res.status} to /sim/config: is it a \`portico sim\`?`;
    } catch (err) {
      return `simulator ${name}: ${(err as Error).message}: start it with \`portico sim --port ${port}\` (or pass --sim-${name.toLowerCase()} URL)`;
    }
  }
  return null;
}

async function chat(t: DrillTarget, model: string, key = t.key, timeoutMs = 60_000): Promise<Answer> {
  const started = performance.now();
  const res = await call(`${t.gateway}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'drill' }] }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: Answer['body'] = {};
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    body = { raw: text.slice(0, 200) };
  }
  return { status: res.status, ms: performance.now() - started, body, headers: res.headers };
}

async function simConfig(url: string, patch?: object): Promise<Record<string, unknown>> {
  const res = await call(`${url}/sim/config`, {
    method: patch ? 'PATCH' : 'GET',
    ...(patch ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) } : {}),
  });
  if (!res.ok) throw new Error(`simulator ${url}: /sim/config answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

async function served(url: string): Promise<number> {
  const res = await call(`${url}/health`);
  return Number(((await res.json()) as { served?: number }).served ?? 0);
}

async function backendStates(t: DrillTarget, model: string): Promise<Record<string, string>> {
  const res = await call(`${t.gateway}/admin/backends`, {
    headers: { authorization: `Bearer ${t.adminToken}` },
  });
  const body = (await res.json()) as {
    data: Array<{ model: string; backends: Array<{ id: string; state: string }> }>;
  };
  const out: Record<string, string> = {};
  for (const b of body.data.find((m) => m.model === model)?.backends ?? []) out[b.id] = b.state;
  return out;
}

type Faults = Record<string, unknown>;

const isFaults = (v: unknown): v is Faults => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The same JSON, whatever the key order. */
function sameFaults(a: Faults, b: Faults): boolean {
  const norm = (f: Faults): string =>
    JSON.stringify(Object.fromEntries(Object.entries(f).sort(([x], [y]) => x.localeCompare(y))));
  return norm(a) === norm(b);
}

/**
 * The merge patch (RFC 7396) that turns the simulator's faults `now` into exactly `want`: what
 * `want` names is set, every other fault is removed (null: back to its default, off).
 */
function replacing(now: Faults, want: Faults): Faults {
  const patch: Faults = { ...want };
  for (const k of Object.keys(now)) if (!(k in want)) patch[k] = null;
  return patch;
}

async function simFaults(name: string, url: string): Promise<Faults> {
  const faults = (await simConfig(url)).faults;
  if (!isFaults(faults))
    throw new Error(
      `simulator ${name} at ${url} does not show its faults in GET /sim/config (an older \`portico sim\`?): a drill could not put it back; restart it with this version`,
    );
  return faults;
}

/** Patch a simulator's faults back to `before` and check, with a fresh GET, that they are back. */
async function restoreFaults(name: string, url: string, before: Faults): Promise<void> {
  await simConfig(url, { faults: replacing(await simFaults(name, url), before) });
  const after = await simFaults(name, url);
  if (!sameFaults(after, before))
    throw new Error(
      `simulator ${name} at ${url} did not go back to its faults before the drill (${JSON.stringify(before)}); it has ${JSON.stringify(after)}. Switch them off with: curl -X PATCH ${url}/sim/config -H 'content-type: application/json' -d '{"faults": null}'`,
    );
}

/**
 * Run `fn` with exactly `faults` on a simulator (its other faults off), then put its previous
 * faults back and check that they are back — also when `fn` fails: a drill leaves the simulator
 * as it found it.
 */
async function withFaults<T>(
  name: string,
  url: string,
  faults: Faults,
  steps: string[],
  fn: () => Promise<T>,
): Promise<T> {
  const before = await simFaults(name, url);
  await simConfig(url, { faults: replacing(before, faults) });
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    try {
      await restoreFaults(name, url, before);
    } catch (restoreErr) {
      throw new Error(
        `${String(err instanceof Error ? err.message : err)}; and ${String(restoreErr instanceof Error ? restoreErr.message : restoreErr)}`,
        { cause: err },
      );
    }
    throw err;
  }
  await restoreFaults(name, url, before);
  steps.push(`simulator ${name} put back as it was`);
  return result;
}

const fmt = (a: Answer): string =>
  `${a.status}${a.body.error?.code ? ` ${a.body.error.code}` : ''} in ${Math.round(a.ms)} ms`;

async function slowStartup(t: DrillTarget, steps: string[]): Promise<boolean> {
  return withFaults('A', t.simA, { slow_headers_ms: 3000 }, steps, async () => {
    steps.push('simulator A now takes 3 s before its first byte (a model still loading)');
    const answers = await Promise.all(Array.from({ length: 4 }, () => chat(t, t.models.slow)));
    for (const a of answers) steps.push(`request -> ${fmt(a)}`);
    const health = await call(`${t.gateway}/health`);
    steps.push(`gateway /health during the slow start: ${health.status}`);
    const ok = answers.every(
      (a) => a.status === 200 || (a.status === 504 && a.body.error?.code === 'upstream_timeout'),
    );
    const bounded = answers.every((a) => a.ms < 20_000);
    return ok && bounded && health.ok;
  });
}

async function quotaRejection(t: DrillTarget, steps: string[]): Promise<boolean> {
  let rejected: Answer | undefined;
  for (let i = 0; i < 20 && !rejected; i++) {
    const a = await chat(t, t.models.quota, t.quotaKey);
    if (a.status === 429) rejected = a;
    else if (a.status === 401) {
      steps.push(
        `request ${i + 1} -> ${fmt(a)}: the gateway at ${t.gateway} does not know the drill's quota key; ${START_HINT}`,
      );
      return false;
    } else steps.push(`request ${i + 1} -> ${fmt(a)}`);
  }
  if (!rejected) {
    steps.push('no rejection after 20 requests: is the quota tenant configured with a small daily_requests?');
    return false;
  }
  const before = await served(t.simA);
  const again = await chat(t, t.models.quota, t.quotaKey);
  const after = await served(t.simA);
  steps.push(
    `rejected -> ${fmt(rejected)}, x-should-retry: ${rejected.headers.get('x-should-retry')}: ${rejected.body.error?.message ?? ''}`,
  );
  steps.push(`one more request -> ${fmt(again)}; backend requests served meanwhile: ${after - before}`);
  return (
    rejected.body.error?.code === 'insufficient_quota' &&
    rejected.headers.get('x-should-retry') === 'false' &&
    again.status === 429 &&
    after === before
  );
}

async function upstreamTimeout(t: DrillTarget, steps: string[]): Promise<boolean> {
  return withFaults('A', t.simA, { hang_rate: 1 }, steps, async () => {
    steps.push('simulator A now never answers');
    const a = await chat(t, t.models.timeout);
    steps.push(`request -> ${fmt(a)}: ${a.body.error?.message ?? ''}`);
    return a.status === 504 && a.body.error?.code === 'upstream_timeout' && a.ms < 15_000;
  });
}

async function backendDown(t: DrillTarget, steps: string[]): Promise<boolean> {
  const downOk = await withFaults('A', t.simA, { error_rate: 1, error_status: 503 }, steps, async () => {
    steps.push('simulator A now answers 503 to everything (backend down)');
    const answers: Answer[] = [];
    for (let i = 0; i < 30; i++) answers.push(await chat(t, t.models.pool));
    const errors = answers.filter((a) => a.status !== 200).length;
    const states = await backendStates(t, t.models.pool);
    steps.push(`30 requests -> ${30 - errors} ok, ${errors} errors; backends: ${JSON.stringify(states)}`);
    return errors === 0 && Object.values(states).some((s) => s === 'open' || s === 'ejected');
  });
  const until = Date.now() + 15_000;
  let states: Record<string, string> = {};
  while (Date.now() < until) {
    await chat(t, t.models.pool);
    states = await backendStates(t, t.models.pool);
    if (Object.values(states).every((s) => s === 'healthy')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  steps.push(`after recovery: ${JSON.stringify(states)}`);
  return downOk && Object.values(states).every((s) => s === 'healthy');
}

const RUNNERS: Record<DrillName, (t: DrillTarget, steps: string[]) => Promise<boolean>> = {
  'slow-startup': slowStartup,
  'quota-rejection': quotaRejection,
  'upstream-timeout': upstreamTimeout,
  'backend-down': backendDown,
};

export async function runDrill(name: DrillName, target: DrillTarget): Promise<DrillResult> {
  const steps: string[] = [];
  const t0 = performance.now();
  let passed = false;
  try {
    passed = await RUNNERS[name](target, steps);
  } catch (err) {
    steps.push(
      `drill failed to run: ${err instanceof Error ? err.message : String(err)} (gateway ${target.gateway}, simulators ${target.simA} and ${target.simB})`,
    );
  }
  return { drill: name, passed, steps, seconds: Math.round((performance.now() - t0) / 100) / 10 };
}
