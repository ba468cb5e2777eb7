/**
 * `portico promptset generate --seed 42 --scenario canary-v1 --dataset general-qa
 *   [--from prompts.json] [--count N] [--categories a,b] --out DIR` (options declared in program.ts).
 * Writes DIR/promptset.jsonl and DIR/manifest.json; the same arguments give the same bytes.
 */
import { readFile } from 'node:fs/promises';
import { generatePromptset, parseSourcePrompts, writePromptset } from '../promptset/index.js';
import { stdio, UsageError, type CliIO } from './common.js';

export interface PromptsetOptions {
  out: string;
  seed: string;
  scenario: string;
  dataset: string;
  from?: string;
  count?: number;
  categories?: string;
}

export async function promptsetGenerate(o: PromptsetOptions, io: CliIO): Promise<void> {
  const from = o.from === undefined ? undefined : parseSourcePrompts(await readFile(o.from, 'utf8'), o.from);
  let ps;
  try {
    ps = generatePromptset({
      seed: o.seed,
      scenario: o.scenario,
      dataset: o.dataset,
      ...(o.count === undefined ? {} : { count: o.count }),
      ...(from === undefined ? {} : { from }),
      ...(o.categories === undefined ? {} : { categories: o.categories.split(',').map((s) => s.trim()) }),
    });
  } catch (err) {
    // The generator's RangeErrors are about the arguments (--categories, --count): usage errors.
    if (err instanceof RangeError)
      throw new UsageError(`${/categor/.test(err.message) ? '--categories' : '--count'}: ${err.message}`);
    throw err;
  }
  const paths = await writePromptset(o.out, ps);
  const m = ps.manifest;
  const cats = Object.entries(m.categories)
    .map(([k, v]) => `${k}=${v.records}`)
    .join(' ');
  io.out(
    `wrote ${paths.jsonl} (${m.records} records, ${m.tokens.prompt_total} prompt tokens, sha256 ${m.files['promptset.jsonl'].sha256})\n` +
      `wrote ${paths.manifest}\ncategories: ${cats}`,
  );
}

/** `portico promptset ARGS...` in-process (tests). */
export async function runPromptsetCommand(argv: string[]): Promise<number> {
  const { runCli } = await import('./program.js');
  return runCli(['promptset', ...argv], stdio(process.env));
}
