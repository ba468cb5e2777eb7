/**
 * `portico promptset generate --seed 42 --scenario canary-v1 --dataset general-qa
 *   [--from prompts.json] [--count N] [--categories a,b] --out DIR`
 * Writes DIR/promptset.jsonl and DIR/manifest.json; the same arguments give the same bytes.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { generatePromptset, parseSourcePrompts, writePromptset } from '../promptset/index.js';

const USAGE = `usage: portico promptset generate --seed N --scenario ID --dataset ID --out DIR
                                 [--from prompts.json] [--count N] [--categories c1,c2]
categories: definition, explanation, code, summarization, text-to-sql`;

export async function runPromptsetCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'generate') {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
    return;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      seed: { type: 'string', default: '42' },
      scenario: { type: 'string', default: 'default' },
      dataset: { type: 'string', default: 'general-qa' },
      from: { type: 'string' },
      count: { type: 'string' },
      categories: { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  if (values.out === undefined) throw new Error(`--out DIR is required\n${USAGE}`);
  const count = values.count === undefined ? undefined : Number(values.count);
  if (count !== undefined && (!Number.isInteger(count) || count < 1))
    throw new Error('--count must be a positive integer');
  const from =
    values.from === undefined
      ? undefined
      : parseSourcePrompts(await readFile(values.from, 'utf8'), values.from);
  const ps = generatePromptset({
    seed: values.seed,
    scenario: values.scenario,
    dataset: values.dataset,
    ...(count === undefined ? {} : { count }),
    ...(from === undefined ? {} : { from }),
    ...(values.categories === undefined
      ? {}
      : { categories: values.categories.split(',').map((s) => s.trim()) }),
  });
  const paths = await writePromptset(values.out, ps);
  const m = ps.manifest;
  const cats = Object.entries(m.categories)
    .map(([k, v]) => `${k}=${v.records}`)
    .join(' ');
  process.stdout.write(
    `wrote ${paths.jsonl} (${m.records} records, ${m.tokens.prompt_total} prompt tokens, sha256 ${m.files['promptset.jsonl'].sha256})\n` +
      `wrote ${paths.manifest}\ncategories: ${cats}\n`,
  );
}
