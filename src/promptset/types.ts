/**
 * Promptset records: one JSON object per line in promptset.jsonl. The `expect` check is what the
 * harness uses to mark a response pass or fail (see ./checks.ts).
 */
export type Expectation =
  | { contains_any: string[] }
  | { contains_all: string[] }
  | { regex: string; flags?: string }
  | { json: { required?: string[] } }
  | { not_empty: true };

export interface PromptRecord {
  id: string;
  scenario: string;
  dataset: string;
  category: string;
  prompt: string;
  max_tokens: number;
  expect: Expectation | null;
  /** Prompt tokens counted with the manifest's tokenizer. */
  prompt_tokens: number;
}

export const BUILTIN_CATEGORIES = [
  'definition',
  'explanation',
  'code',
  'summarization',
  'text-to-sql',
] as const;
export type BuiltinCategory = (typeof BUILTIN_CATEGORIES)[number];
