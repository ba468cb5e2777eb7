import type { Pricing } from '../config/schema.js';

/** USD for one request from per-million-token prices. Rounded to 1e-9 to keep sums stable. */
export function costUsd(
  pricing: Pricing | undefined,
  promptTokens: number,
  completionTokens: number,
): number {
  if (!pricing) return 0;
  const usd =
    (promptTokens * pricing.input_per_million + completionTokens * pricing.output_per_million) / 1_000_000;
  return Math.round(usd * 1e9) / 1e9;
}
