/**
 * The deployment files and the docs point at documents that exist: every `docs/NAME.md` named in a
 * file under deploy/ (comments in compose.yaml, .env.example, values.yaml, templates, ...), in
 * README.md or in docs/, and every relative Markdown link in README.md and docs/*.md (anchors are
 * not checked). .env.example and values.yaml pointed at docs/configuration.md, which never existed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from './support.js';

const TEXT = /\.(ya?ml|json|tpl|txt|md|sh|tmpl)$|^(Dockerfile|\.env\.example)$/;

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (TEXT.test(name)) out.push(p);
  }
  return out;
}

function docsMarkdown(): string[] {
  return [join(ROOT, 'README.md'), ...files(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))];
}

test('every docs/NAME.md named in deploy/, README.md and docs/ exists', () => {
  const missing: string[] = [];
  for (const file of [...files(join(ROOT, 'deploy')), ...docsMarkdown()]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?<![\w./-])docs\/([\w./-]+?\.md)\b/g)) {
      if (!existsSync(join(ROOT, 'docs', m[1] as string)))
        missing.push(`${relative(ROOT, file)}: docs/${m[1] as string}`);
    }
  }
  assert.deepEqual(missing, [], 'references to documents that do not exist');
});

test('every relative Markdown link in README.md and docs/ resolves to a file', () => {
  const missing: string[] = [];
  for (const file of docsMarkdown()) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s#]+)(?:#[^)\s]*)?\)/g)) {
      const target = m[1] as string;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('/')) continue;
      if (!existsSync(resolve(dirname(file), decodeURIComponent(target))))
        missing.push(`${relative(ROOT, file)}: ${target}`);
    }
  }
  assert.deepEqual(missing, [], 'links to files that do not exist');
});
