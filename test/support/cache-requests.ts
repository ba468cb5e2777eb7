/**
 * Test support for the response-cache tests: chat requests through a running gateway that report
 * what the cache did, a request the test cancels, the simulator's upstream calls and metric values.
 */
import { ACME_KEY, type TestGateway, type TestSim } from './gateway.js';

export interface CacheAnswer {
  status: number;
  /** x-portico-cache */
  cache: string | null;
  /** x-portico-cache-tier */
  tier: string | null;
  text: string;
}

/** POST /v1/chat/completions and read the whole answer. */
export async function post(
  gw: TestGateway,
  body: string,
  key = ACME_KEY,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<CacheAnswer> {
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    ...(signal ? { signal } : {}),
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body,
  });
  return {
    status: res.status,
    cache: res.headers.get('x-portico-cache'),
    tier: res.headers.get('x-portico-cache-tier'),
    text: await res.text(),
  };
}

/** A request a test cancels (a client that leaves): settles either way, undefined once cancelled. */
export function abortable(
  gw: TestGateway,
  body: string,
  signal: AbortSignal,
): Promise<CacheAnswer | undefined> {
  return post(gw, body, ACME_KEY, {}, signal).catch(() => undefined);
}

/** Chat calls the HTTP simulator received. */
export function upstreamCalls(sim: TestSim): number {
  return sim.received.filter((r) => r.path.startsWith('/v1/chat/completions')).length;
}

/** The sum of a metric's series (those whose labels include `labels`); NaN when there is none. */
export async function metric(gw: TestGateway, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  let total = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    if (!series || (series !== name && !series.startsWith(`${name}{`))) continue;
    if (labels && !series.includes(labels)) continue;
    total += Number(value);
    seen = true;
  }
  return seen ? total : Number.NaN;
}
