/** The generated parts of the docs (error catalog, config reference) match the code. Fix with `npm run docs`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GENERATED, GENERATED_FILES, replaceBetween } from '../../scripts/gen-docs.js';

describe('docs in sync with the code', () => {
  for (const g of GENERATED) {
    it(`${g.file} (${g.marker}) is up to date — run \`npm run docs\` if this fails`, () => {
      const text = readFileSync(g.file, 'utf8');
      assert.equal(text, replaceBetween(text, g.marker, g.render()));
    });
  }

  for (const g of GENERATED_FILES) {
    it(`${g.file} is up to date — run \`npm run docs\` if this fails`, () => {
      assert.equal(readFileSync(g.file, 'utf8'), g.render());
    });
  }

  it('every catalog code appears in docs/errors.md', async () => {
    const { ERROR_CATALOG } = await import('../../src/errors/catalog.js');
    const text = readFileSync('docs/errors.md', 'utf8');
    for (const code of Object.keys(ERROR_CATALOG)) assert.ok(text.includes(`\`${code}\``), code);
  });
});
