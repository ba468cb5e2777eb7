import type { Pricing } from '../config/schema.js';
import type { CacheTokens } from '../providers/usage.js';

export { cacheTokensOf } from '../providers/usage.js';

/**
 * USD for one request from per-million-token prices. Prompt tokens include the cached ones (OpenAI's
 * convention); those are priced at the model's cache prices when configured (Anthropic bills cache
 * reads at a tenth and writes at 1.25x of the input price). Rounded to 1e-9 to keep sums stable.
 */
export function costUsd(
  pricing: Pricing | undefined,
  promptTokens: number,
  completionTokens: number,
  cache?: CacheTokens,
): number {
  if (!pricing) return 0;
  const read = Math.min(cache?.read ?? 0, promptTokens);
  const write = Math.min(cache?.write ?? 0, promptTokens - read);
  const usd =
    ((promptTokens - read - write) * pricing.input_per_million +
      read * (pricing.cache_read_per_million ?? pricing.input_per_million) +
      write * (pricing.cache_write_per_million ?? pricing.input_per_million) +
      completionTokens * pricing.output_per_million) /
    1_000_000;
  return Math.round(usd * 1e9) / 1e9;
}
