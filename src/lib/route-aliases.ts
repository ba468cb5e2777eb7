/**
 * Base-URL forgiveness for the OpenAI-style API: many tools take a base URL with or without `/v1`,
 * and some append a trailing slash. `/chat/completions`, `/v1/chat/completions/` and the like are
 * rewritten to the canonical path before routing, so they reach the same route (and the same
 * bounded `endpoint` metric label). Other paths (admin, console, probes) are left alone.
 */
const API_PATH =
  /^(?:\/v1)?\/(chat\/completions|completions|embeddings|rerank|models(?:\/[^/?]+)?|responses(?:\/[^/?]+(?:\/input_items)?)?|messages(?:\/count_tokens)?)\/?(\?.*)?$/;

export function canonicalApiUrl(url: string): string {
  const m = API_PATH.exec(url);
  if (!m) return url;
  const canonical = `/v1/${m[1] ?? ''}${m[2] ?? ''}`;
  return canonical;
}
