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
