/**
 * Cache keys: a sha256 over the tenant, the model (the A/B variant when the alias splits), the
 * endpoint and the request exactly as it goes upstream (messages after system-prompt injection,
 * every output-affecting parameter, the provider headers it carries), in a stable key order. Fields that cannot change the output (`stream_options`, `user`) are left out, so
 * a client that asks for usage and one that does not share an entry (usage is always stored).
 */
import { hash } from 'node:crypto';
import { configure } from 'safe-stable-stringify';

const stringify = configure({ deterministic: true, circularValue: Error, bigint: false });

/** Request fields that do not change what the model generates. */
const IGNORED = new Set(['stream_options', 'user', 'metadata', 'store']);

export type CacheEndpoint = 'chat' | 'completions';

export function cacheKey(tenant: string, model: string, endpoint: CacheEndpoint, request: object): string {
  const relevant: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(request)) {
    if (IGNORED.has(k) || v === undefined) continue;
    relevant[k] = k === 'stream' ? v === true : v;
  }
  // What rides on the request under a symbol goes upstream too (the Anthropic API headers a client
  // sent: anthropic-beta can change the answer), so it is part of the key.
  for (const sym of Object.getOwnPropertySymbols(request)) {
    const v = (request as Record<symbol, unknown>)[sym];
    if (v !== undefined) relevant[`@${sym.description ?? ''}`] = v;
  }
  const text = stringify({ v: 1, tenant, model, endpoint, request: relevant }) ?? '';
  return hash('sha256', text, 'hex');
}

/** Cached by default only when the output is deterministic: temperature 0 or a fixed seed. */
export function isDeterministic(request: { temperature?: number | null; seed?: number | null }): boolean {
  return request.temperature === 0 || (request.seed !== undefined && request.seed !== null);
}
