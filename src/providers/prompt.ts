/**
 * Legacy completions prompts as the providers and the pipeline read them. A prompt of token ids
 * (`[1, 2, 3]` or `[[1, 2], [3]]`, valid OpenAI input) can go only to a backend that takes ids:
 * OpenAI-compatible servers get it as sent; text-only providers (Anthropic, the built-in engine)
 * refuse it with tokenPromptRefused.
 */
import { PorticoError } from '../errors/portico-error.js';
import type { CompletionPrompt } from './openai-types.js';

/** Is this prompt token ids (one list or a list of lists) rather than text? */
export function isTokenPrompt(prompt: CompletionPrompt): prompt is number[] | number[][] {
  if (!Array.isArray(prompt)) return false;
  const first: unknown = prompt[0];
  return typeof first === 'number' || Array.isArray(first);
}

/** The prompts of a request, one per choice: a text, or a list of token ids. */
export function promptList(prompt: CompletionPrompt): Array<string | number[]> {
  if (typeof prompt === 'string') return [prompt];
  const first: unknown = prompt[0];
  return typeof first === 'number' ? [prompt as number[]] : (prompt as Array<string | number[]>);
}

/** The 400 of a provider that takes text only, asked for a prompt of token ids. */
export function tokenPromptRefused(what: string): PorticoError {
  return new PorticoError(
    'invalid_request',
    `${what} takes text prompts only, and this prompt is token ids. Send the prompt as text, or use a model served by an OpenAI-compatible backend that takes token ids (vLLM, llama.cpp).`,
    { param: 'prompt' },
  );
}
