/** Reading and writing promptsets on disk, with input validated by zod (bad files name the line). */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Promptset, SourcePrompt } from './generate.js';
import type { Expectation, PromptRecord } from './types.js';

const expectationSchema: z.ZodType<Expectation> = z.union([
  z.object({ contains_any: z.array(z.string().min(1)).min(1) }).strict(),
  z.object({ contains_all: z.array(z.string().min(1)).min(1) }).strict(),
  z
    .object({
      regex: z.string().min(1),
      flags: z
        .string()
        .regex(/^[imsu]*$/)
        .optional(),
    })
    .strict(),
  z.object({ json: z.object({ required: z.array(z.string()).optional() }).strict() }).strict(),
  z.object({ not_empty: z.literal(true) }).strict(),
]);

const sourcePromptSchema = z
  .object({
    text: z.string().min(1),
    category: z.string().min(1),
    max_tokens: z.number().int().positive().optional(),
    expect: expectationSchema.nullable().optional(),
  })
  .strict();

const recordSchema = z
  .object({
    id: z.string().min(1),
    scenario: z.string(),
    dataset: z.string(),
    category: z.string(),
    prompt: z.string().min(1),
    max_tokens: z.number().int().positive(),
    expect: expectationSchema.nullable(),
    prompt_tokens: z.number().int().nonnegative(),
  })
  .strict();

function describe(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Parses a `--from` file: a JSON array of `{text, category, max_tokens?, expect?}`. */
export function parseSourcePrompts(text: string, name = 'prompts.json'): SourcePrompt[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not valid JSON (${(e as Error).message})`);
  }
  const res = z.array(sourcePromptSchema).safeParse(raw);
  if (!res.success) throw new Error(`${name}: ${describe(res.error)}`);
  return res.data as SourcePrompt[];
}

/** Parses promptset.jsonl; every line must be a valid record (validation also compiles regexes). */
export function parsePromptsetJsonl(text: string, name = 'promptset.jsonl'): PromptRecord[] {
  const out: PromptRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new Error(`${name}:${i + 1}: not valid JSON`);
    }
    const res = recordSchema.safeParse(raw);
    if (!res.success) throw new Error(`${name}:${i + 1}: ${describe(res.error)}`);
    const rec = res.data as PromptRecord;
    if (rec.expect !== null && 'regex' in rec.expect) {
      try {
        new RegExp(rec.expect.regex, rec.expect.flags ?? '');
      } catch (e) {
        throw new Error(`${name}:${i + 1}: expect.regex: ${(e as Error).message}`);
      }
    }
    out.push(rec);
  }
  if (out.length === 0) throw new Error(`${name}: no records`);
  return out;
}

export async function readPromptset(path: string): Promise<PromptRecord[]> {
  return parsePromptsetJsonl(await readFile(path, 'utf8'), path);
}

export async function writePromptset(
  dir: string,
  ps: Promptset,
): Promise<{ jsonl: string; manifest: string }> {
  await mkdir(dir, { recursive: true });
  const jsonl = join(dir, 'promptset.jsonl');
  const manifest = join(dir, 'manifest.json');
  await writeFile(jsonl, ps.jsonl, 'utf8');
  await writeFile(manifest, ps.manifestJson, 'utf8');
  return { jsonl, manifest };
}
