import type { Usage } from './openai-types.js';

/** Prompt tokens served from or written to the provider's prompt cache (part of the prompt tokens). */
export interface CacheTokens {
  read: number;
  write: number;
}

/** The cache part of an OpenAI-shaped usage (cached_tokens; cache writes as Anthropic backends report them). */
export function cacheTokensOf(usage: Usage): CacheTokens {
  const d = usage.prompt_tokens_details;
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
  return {
    read: num(d?.cached_tokens),
    write: num(d?.['cache_creation_tokens'] ?? usage['cache_creation_input_tokens']),
  };
}

/**
 * A token count as an upstream reported it: a finite number >= 0 (rounded, at most 2^53 - 1).
 * Anything else — absent, null, a string, NaN, negative — is no count.
 */
export function tokenCount(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0
    ? Math.min(Math.round(v), Number.MAX_SAFE_INTEGER)
    : undefined;
}

/** A count as it stands when it is already what tokenCount would make of it. */
function whole(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The usage itself when it needs nothing derived, replaced or counted — prompt, completion and
 * total tokens all whole numbers >= 0, the answer of every OpenAI-compatible server — so the hot
 * paths take it as it is: no copy, and no estimate closures made (normalizeUsage gives the same
 * counts for it). Undefined otherwise: normalizeUsage then reads it.
 */
export function wholeUsage(raw: unknown): Usage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const u = raw as Usage;
  return whole(u.prompt_tokens) && whole(u.completion_tokens) && whole(u.total_tokens) ? u : undefined;
}

/** Portico's own counts, for what an upstream's usage leaves out (called only when needed). */
export interface UsageEstimates {
  /** The prompt, as the gateway counts it (tenancy/tokens.ts). */
  prompt: () => number;
  /** The output; absent for routes without output (embeddings, rerank), whose completion is 0. */
  completion?: () => number;
}

export interface NormalizedUsage {
  usage: Usage;
  /** Some count is Portico's estimate, not the upstream's (the ledger record is marked `estimated`). */
  estimated: boolean;
}

/**
 * The usage of an answer without output (embeddings, rerank): its `usage` when that carries a
 * count, else the input tokens Cohere reports under `meta` — `meta.billed_units.input_tokens` (what
 * the upstream bills), else `meta.tokens.input_tokens` — as `{prompt_tokens, total_tokens}`, for
 * normalizeUsage like any other. Else the `usage` as it is (none, or no count: the caller
 * estimates). Cohere's rerank bills `search_units` alone, which are no tokens: still estimated.
 */
export function inputUsageOf(answer: unknown): unknown {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const a = answer as { usage?: unknown; meta?: unknown };
  if (hasCount(a.usage)) return a.usage;
  const n = inputTokensOf(field(a.meta, 'billed_units')) ?? inputTokensOf(field(a.meta, 'tokens'));
  return n === undefined ? a.usage : { prompt_tokens: n, total_tokens: n };
}

function field(o: unknown, name: string): unknown {
  return typeof o === 'object' && o !== null && !Array.isArray(o)
    ? (o as Record<string, unknown>)[name]
    : undefined;
}

function inputTokensOf(units: unknown): number | undefined {
  return tokenCount(field(units, 'input_tokens'));
}

/** The usage carries a count normalizeUsage takes. */
function hasCount(raw: unknown): boolean {
  return (
    tokenCount(field(raw, 'prompt_tokens')) !== undefined ||
    tokenCount(field(raw, 'completion_tokens')) !== undefined ||
    tokenCount(field(raw, 'total_tokens')) !== undefined
  );
}

/**
 * The one reading of an upstream's usage, for every route: whatever its shape, accounting gets
 * finite non-negative integers. Upstreams differ: vLLM's and Jina's rerank report
 * `{total_tokens}` only, some embedding servers no usage at all, Cohere a `meta` instead
 * (inputUsageOf reads it); an
 * unchecked `usage.prompt_tokens + usage.completion_tokens` made NaN, and a NaN quota or
 * tokens/min window stops enforcing (or refuses every later request).
 *
 * - completion = completion_tokens, else total - prompt when both are given, else the estimate
 *   (0 for routes without output);
 * - prompt = prompt_tokens, else total - completion, else the estimate;
 * - total = total_tokens, else prompt + completion.
 *
 * Undefined when `raw` carries no count at all (no usage, `{}`, `meta` only): the caller bills its
 * estimate, as for any answer without usage. Other fields (the cache details) are kept.
 */
export function normalizeUsage(raw: unknown, est: UsageEstimates): NormalizedUsage | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const u = raw as Record<string, unknown>;
  const p = tokenCount(u.prompt_tokens);
  const c = tokenCount(u.completion_tokens);
  const t = tokenCount(u.total_tokens);
  if (p === undefined && c === undefined && t === undefined) return undefined;
  let estimated = false;
  let completion: number;
  if (!est.completion) completion = 0;
  else if (c !== undefined) completion = c;
  else if (p !== undefined && t !== undefined && t >= p) completion = t - p;
  else {
    completion = est.completion();
    estimated = true;
  }
  let prompt: number;
  if (p !== undefined) prompt = p;
  else if (t !== undefined) prompt = Math.max(0, t - completion);
  else {
    prompt = est.prompt();
    estimated = true;
  }
  return {
    usage: {
      ...u,
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: t ?? prompt + completion,
    },
    estimated,
  };
}
