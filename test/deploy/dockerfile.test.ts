/**
 * deploy/Dockerfile lint: dockerfile-utils' validator (the rules of the VS Code Docker language
 * server: bad instructions, flags, JSON forms, ...) plus the house rules hadolint would otherwise
 * need a binary for: multi-stage, non-root final user, HEALTHCHECK on /health, `node dist/main.js start`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';

const text = readFileSync(join(process.cwd(), 'deploy/Dockerfile'), 'utf8');

test('the Dockerfile has no validator problems', () => {
  const diags = validate(text);
  assert.deepEqual(
    diags.map((d) => `line ${d.range.start.line + 1}: ${d.message}`),
    [],
  );
});

test('multi-stage, non-root, HEALTHCHECK on /health, starts node dist/main.js start', () => {
  const df = DockerfileParser.parse(text);
  const froms = df.getFROMs();
  assert.ok(froms.length >= 2, 'multi-stage');
  const instructions = df.getInstructions();
  const lastFrom = instructions.lastIndexOf(froms[froms.length - 1] as (typeof instructions)[number]);
  const final = instructions.slice(lastFrom);
  const kw = (k: string) => final.filter((i) => i.getKeyword() === k);
  const users = kw('USER');
  assert.ok(users.length > 0, 'final stage sets USER');
  const user = users[users.length - 1]?.getArgumentsContent() ?? '';
  assert.ok(!/^(root|0)(:|$)/.test(user), `final USER is not root (got ${user})`);
  assert.ok(kw('COPY').some((c) => /--from=build/.test(c.getTextContent())), 'copies artifacts from the build stage');
  assert.ok(!kw('COPY').some((c) => /\bsrc\b/.test(c.getArgumentsContent() ?? '')), 'no sources in the runtime stage');
  const hc = kw('HEALTHCHECK');
  assert.equal(hc.length, 1);
  assert.match(hc[0]?.getTextContent() ?? '', /\/health/);
  const entry = kw('ENTRYPOINT')[0]?.getArgumentsContent() ?? '';
  const cmd = kw('CMD')[0]?.getArgumentsContent() ?? '';
  assert.match(entry, /"node",\s*"dist\/main\.js"/);
  assert.match(cmd, /^\["start"/);
  for (const f of froms) assert.ok(!/:latest\b/.test(f.getTextContent()) , 'base images are pinned');
});

test('.dockerignore keeps secrets and local state out of the build context', () => {
  const lines = readFileSync(join(process.cwd(), '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', '.git', '.env', 'dist']) assert.ok(lines.includes(p), p);
});
