import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePromptset } from './generate.js';
import { compileExpectation } from './checks.js';
import { parsePromptsetJsonl, parseSourcePrompts } from './io.js';
import { BUILTIN_CATEGORIES } from './types.js';
import { runPromptsetCommand } from '../cli/promptset.js';

const base = { seed: 42, scenario: 'canary-v1', dataset: 'general-qa', count: 60 };

test('same seed gives the same bytes; another seed gives other bytes', () => {
  const a = generatePromptset(base);
  const b = generatePromptset(base);
  assert.equal(a.jsonl, b.jsonl);
  assert.equal(a.manifestJson, b.manifestJson);
  // Golden digest: a change here means every stored promptset changes. Update it only on purpose
  // (template or tokenizer change) and say so in the commit.
  assert.equal(
    a.manifest.files['promptset.jsonl'].sha256,
    '2b3ba87e3e0255d7adfb5e1a6bc1527a262412adfbb0ccfbd66e4b030cc9ec6f',
  );
  const c = generatePromptset({ ...base, seed: 43 });
  assert.notEqual(a.jsonl, c.jsonl);
});

test('manifest counts, token counts and checksum match the jsonl', () => {
  const ps = generatePromptset(base);
  const m = ps.manifest;
  assert.equal(m.records, 60);
  assert.equal(m.files['promptset.jsonl'].sha256, createHash('sha256').update(ps.jsonl).digest('hex'));
  assert.equal(m.files['promptset.jsonl'].bytes, Buffer.byteLength(ps.jsonl));
  assert.deepEqual(Object.keys(m.categories), [...BUILTIN_CATEGORIES].sort());
  for (const c of BUILTIN_CATEGORIES) assert.equal(m.categories[c]?.records, 12, c);
  const records = parsePromptsetJsonl(ps.jsonl);
  assert.equal(records.length, 60);
  assert.equal(
    m.tokens.prompt_total,
    records.reduce((a, r) => a + r.prompt_tokens, 0),
  );
  assert.ok(records.every((r) => r.prompt_tokens > 0 && r.max_tokens > 0 && r.expect !== null));
  assert.ok(!/\d{4}-\d{2}-\d{2}T/.test(ps.manifestJson), 'no timestamp in the manifest');
});

test('--from prompts come first, generated ones fill up to --count', () => {
  const from = parseSourcePrompts(
    JSON.stringify([
      { text: 'What is machine learning?', category: 'definition' },
      { text: 'Explain the transformer architecture in detail.', category: 'explanation', max_tokens: 300 },
    ]),
  );
  const ps = generatePromptset({ ...base, count: 5, from });
  assert.equal(ps.records[0]?.prompt, 'What is machine learning?');
  assert.equal(ps.records[1]?.max_tokens, 300);
  assert.deepEqual(ps.manifest.source, { from_file_records: 2, generated_records: 3 });
  assert.throws(() => parseSourcePrompts('[{"text":""}]'), /text|category/);
});

test('checks: contains_any, regex, json, not_empty', () => {
  assert.equal(compileExpectation({ contains_any: ['Data'] })('learns from DATA'), null);
  assert.match(compileExpectation({ contains_any: ['x'] })('nope') ?? '', /contains none/);
  assert.equal(compileExpectation({ regex: 'select.+from', flags: 'i' })('SELECT * FROM t'), null);
  assert.equal(compileExpectation({ json: { required: ['title'] } })('```json\n{"title":"t"}\n```'), null);
  assert.match(compileExpectation({ json: { required: ['title'] } })('{"a":1}') ?? '', /lacks keys/);
  assert.match(compileExpectation({ not_empty: true })('  ') ?? '', /empty/);
});

test('CLI writes byte-identical files for the same seed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portico-ps-'));
  try {
    const from = join(dir, 'prompts.json');
    await writeFile(from, JSON.stringify([{ text: 'What is machine learning?', category: 'definition' }]));
    const args = [
      'generate',
      '--seed',
      '42',
      '--scenario',
      'canary-v1',
      '--dataset',
      'general-qa',
      '--from',
      from,
      '--count',
      '25',
    ];
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      await runPromptsetCommand([...args, '--out', join(dir, 'a')]);
      await runPromptsetCommand([...args, '--out', join(dir, 'b')]);
    } finally {
      process.stdout.write = write;
    }
    for (const f of ['promptset.jsonl', 'manifest.json']) {
      const a = await readFile(join(dir, 'a', f));
      const b = await readFile(join(dir, 'b', f));
      assert.ok(a.equals(b), `${f} differs`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
