/**
 * Token counting when the upstream gives no usage (and for the up-front quota reservation):
 * gpt-tokenizer's o200k/cl100k BPE, which is within a few percent of most chat models' tokenizers.
 * Records counted this way are marked `estimated` in the ledger.
 */
import { countTokens } from 'gpt-tokenizer';
import type { ChatMessage, ContentPart } from '../providers/openai-types.js';

/** Per-message framing tokens, as OpenAI's chat format adds them. */
const PER_MESSAGE = 4;
const PER_IMAGE = 765;

export function countText(text: string): number {
  return text.length === 0 ? 0 : countTokens(text);
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

export function countPrompt(prompt: string | string[]): number {
  return Array.isArray(prompt) ? prompt.reduce((n, p) => n + countText(p), 0) : countText(prompt);
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
