/**
 * Promptset generation: the same options give the same bytes. Nothing here reads the clock or the
 * environment; the manifest carries no timestamp (its id is derived from the content instead).
 */
import { createHash } from 'node:crypto';
import { Prng } from './prng.js';
import { GENERATORS } from './templates.js';
import { BUILTIN_CATEGORIES, type Expectation, type PromptRecord } from './types.js';
import { countText } from '../tenancy/tokens.js';

export const TOKENIZER = 'o200k_base';
export const GENERATOR_VERSION = 'portico-promptset/1';

/** A prompt given by the user (`--from prompts.json`), the seed's `{text, category}` shape. */
export interface SourcePrompt {
  text: string;
  category: string;
  max_tokens?: number;
  expect?: Expectation | null;
}

export interface GenerateOptions {
  seed: number | string;
  scenario: string;
  dataset: string;
  /** Records to produce. Default: the number of source prompts, or 50 without any. */
  count?: number;
  from?: SourcePrompt[];
  /** Restrict generated records to these built-in categories. */
  categories?: readonly string[];
}

export interface CategoryStats {
  records: number;
  prompt_tokens: number;
  max_tokens: number;
}

export interface Manifest {
  schema_version: 1;
  id: string;
  generator: string;
  scenario: string;
  dataset: string;
  seed: string;
  tokenizer: string;
  records: number;
  categories: Record<string, CategoryStats>;
  tokens: {
    prompt_total: number;
    prompt_min: number;
    prompt_max: number;
    prompt_mean: number;
    max_tokens_total: number;
  };
  source: { from_file_records: number; generated_records: number };
  files: { 'promptset.jsonl': { sha256: string; bytes: number; records: number } };
}

export interface Promptset {
  records: PromptRecord[];
  jsonl: string;
  manifest: Manifest;
  manifestJson: string;
}

const DEFAULT_MAX_TOKENS = 128;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Fixed key order so the bytes never depend on how a record was built. */
function recordLine(r: PromptRecord): string {
  return JSON.stringify({
    id: r.id,
    scenario: r.scenario,
    dataset: r.dataset,
    category: r.category,
    prompt: r.prompt,
    max_tokens: r.max_tokens,
    expect: r.expect,
    prompt_tokens: r.prompt_tokens,
  });
}

export function generatePromptset(opts: GenerateOptions): Promptset {
  const from = opts.from ?? [];
  const count = opts.count ?? (from.length > 0 ? from.length : 50);
  if (!Number.isInteger(count) || count < 1 || count > 1_000_000)
    throw new RangeError('count must be an integer in 1..1000000');
  const categories = (opts.categories ?? BUILTIN_CATEGORIES).slice();
  for (const c of categories) {
    if (!(c in GENERATORS))
      throw new RangeError(`unknown category "${c}" (built-in: ${BUILTIN_CATEGORIES.join(', ')})`);
  }
  if (categories.length === 0) throw new RangeError('at least one category is needed');
  const seed = String(opts.seed);
  const rng = new Prng(`${seed}\u0000${opts.scenario}\u0000${opts.dataset}`);

  const width = String(count).length < 4 ? 4 : String(count).length;
  const records: PromptRecord[] = [];
  const push = (category: string, prompt: string, maxTokens: number, expect: Expectation | null): void => {
    records.push({
      id: `${opts.scenario}-${String(records.length + 1).padStart(width, '0')}`,
      scenario: opts.scenario,
      dataset: opts.dataset,
      category,
      prompt,
      max_tokens: maxTokens,
      expect,
      prompt_tokens: countText(prompt),
    });
  };

  const fromUsed = Math.min(from.length, count);
  for (let i = 0; i < fromUsed; i++) {
    const p = from[i] as SourcePrompt;
    push(p.category, p.text, p.max_tokens ?? DEFAULT_MAX_TOKENS, p.expect ?? { not_empty: true });
  }
  // Categories are dealt in shuffled rounds so every prefix of the file is roughly balanced.
  let round: string[] = [];
  while (records.length < count) {
    if (round.length === 0) round = rng.shuffle(categories);
    const category = round.shift() as keyof typeof GENERATORS;
    const g = GENERATORS[category](rng);
    push(category, g.prompt, g.max_tokens, g.expect);
  }

  const jsonl = records.map(recordLine).join('\n') + '\n';
  const stats: Record<string, CategoryStats> = {};
  for (const r of records) {
    const s = (stats[r.category] ??= { records: 0, prompt_tokens: 0, max_tokens: 0 });
    s.records += 1;
    s.prompt_tokens += r.prompt_tokens;
    s.max_tokens += r.max_tokens;
  }
  const sortedStats: Record<string, CategoryStats> = {};
  for (const k of Object.keys(stats).sort()) sortedStats[k] = stats[k] as CategoryStats;
  const tokens = records.map((r) => r.prompt_tokens);
  const total = tokens.reduce((a, b) => a + b, 0);
  const digest = sha256(jsonl);
  const manifest: Manifest = {
    schema_version: 1,
    id: `${opts.scenario}-${digest.slice(0, 12)}`,
    generator: GENERATOR_VERSION,
    scenario: opts.scenario,
    dataset: opts.dataset,
    seed,
    tokenizer: TOKENIZER,
    records: records.length,
    categories: sortedStats,
    tokens: {
      prompt_total: total,
      prompt_min: Math.min(...tokens),
      prompt_max: Math.max(...tokens),
      prompt_mean: Math.round((total / records.length) * 100) / 100,
      max_tokens_total: records.reduce((a, r) => a + r.max_tokens, 0),
    },
    source: { from_file_records: fromUsed, generated_records: records.length - fromUsed },
    files: {
      'promptset.jsonl': { sha256: digest, bytes: Buffer.byteLength(jsonl, 'utf8'), records: records.length },
    },
  };
  return { records, jsonl, manifest, manifestJson: JSON.stringify(manifest, null, 2) + '\n' };
}
