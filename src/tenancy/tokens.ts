/**
 * Token counting when the upstream gives no usage (and for the up-front quota reservation):
 * gpt-tokenizer's o200k BPE, which is within a few percent of most chat models' tokenizers.
 * Records counted this way are marked `estimated` in the ledger.
 *
 * The BPE tables cost ~55 MB of memory and ~0.35 s to load, and most deployments never need them
 * (backends report usage; no token limits): they load on first use, or at start-up and on config
 * reloads when a tenant has a tokens/min limit or a quota (Gateway), so no request waits for them.
 */
import { createRequire } from 'node:module';
import { LRUCache } from 'lru-cache';
import type { ChatMessage, CompletionPrompt, ContentPart } from '../providers/openai-types.js';

type CountTokens = (text: string) => number;
let countTokens: CountTokens | undefined;

/**
 * Texts are counted as ordinary text: a special-token marker in a prompt or an answer
 * (`<|endoftext|>`, `<|endofprompt|>`) is counted as the characters it is, as OpenAI counts a
 * message that quotes one (tiktoken's `encode_ordinary`). gpt-tokenizer's default throws on them
 * ("Disallowed special token found"), which failed any request that quoted one with a 500 for a
 * tenant with token limits; with no disallowed tokens it also skips a scan of the text for them.
 */
const ORDINARY = { disallowedSpecial: new Set<string>() };

/** Load the tokenizer now (synchronously; a no-op once loaded). */
export function loadTokenizer(): CountTokens {
  if (countTokens === undefined) {
    const bpe = (createRequire(import.meta.url)('gpt-tokenizer') as typeof import('gpt-tokenizer'))
      .countTokens;
    countTokens = (text) => bpe(text, ORDINARY);
  }
  return countTokens;
}

export function tokenizerLoaded(): boolean {
  return countTokens !== undefined;
}

/** Per-message framing tokens, as OpenAI's chat format adds them. */
const PER_MESSAGE = 4;
const PER_IMAGE = 765;

/**
 * Texts come back: a tenant's system prompt is in every request of the tenant, and a chat resends
 * its whole history every turn — at turn 20 a chat counts 40 messages, 38 of them seen before. Each
 * distinct text is counted once (BPE in JS costs ~50-100 ns per character; a lookup hashes the
 * string once, and the tenant prompt's string is the same object every time). Only the tiniest
 * texts ("yes", "thanks") are counted directly: a lookup would cost about as much.
 */
export const COUNT_CACHE_MIN_CHARS = 16;
const counted = new LRUCache<string, number>({
  max: 8192,
  // Bounded by the characters it keeps alive (~8 MB of UTF-16 at most).
  maxSize: 4_000_000,
  sizeCalculation: (_n, text) => text.length,
});
const countStats = { hits: 0, misses: 0 };

/** Hits and misses of the count cache since start (tests, diagnostics). */
export function countCacheStats(): { hits: number; misses: number; entries: number } {
  return { ...countStats, entries: counted.size };
}

export function countText(text: string): number {
  if (text.length === 0) return 0;
  if (text.length < COUNT_CACHE_MIN_CHARS) return (countTokens ?? loadTokenizer())(text);
  const known = counted.get(text);
  if (known !== undefined) {
    countStats.hits++;
    return known;
  }
  countStats.misses++;
  const n = (countTokens ?? loadTokenizer())(text);
  counted.set(text, n);
  return n;
}

export function countMessages(messages: ChatMessage[]): number {
  let n = 3;
  for (const m of messages) {
    n += PER_MESSAGE;
    const c = m.content;
    if (typeof c === 'string') n += countText(c);
    else if (Array.isArray(c)) {
      for (const p of c as ContentPart[]) {
        if (p.type === 'text' && typeof (p as { text?: unknown }).text === 'string')
          n += countText((p as { text: string }).text);
        else if (p.type === 'image_url') n += PER_IMAGE;
      }
    }
    if (m.tool_calls)
      for (const tc of m.tool_calls) n += countText(tc.function.name) + countText(tc.function.arguments);
  }
  return n;
}

/** A completions prompt's tokens: texts counted, token ids (one list or lists) are their number. */
export function countPrompt(prompt: CompletionPrompt): number {
  if (typeof prompt === 'string') return countText(prompt);
  let n = 0;
  for (const p of prompt) n += typeof p === 'string' ? countText(p) : Array.isArray(p) ? p.length : 1;
  return n;
}

export function countEmbeddingInput(input: unknown): number {
  if (typeof input === 'string') return countText(input);
  if (Array.isArray(input)) {
    let n = 0;
    for (const x of input) n += typeof x === 'string' ? countText(x) : Array.isArray(x) ? x.length : 1;
    return n;
  }
  return 0;
}
