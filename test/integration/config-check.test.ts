/**
 * `portico config check` finds every problem in one pass: schema errors, unset ${ENV} (once),
 * and the cross-field checks, each with its path; an empty file or one without models fails;
 * --json for CI. The published JSON Schema validates the examples.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { runCli } from '../../src/cli/program.js';
import type { CliIO } from '../../src/cli/common.js';

function capture(env: Record<string, string> = {}): CliIO & { lines: string[] } {
  const lines: string[] = [];
  return { env, lines, out: (l) => lines.push(l), err: (l) => lines.push(l) };
}

describe('portico config check', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-config-check-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const check = async (yaml: string, args: string[] = [], env: Record<string, string> = {}) => {
    const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, yaml);
    const io = capture(env);
    const code = await runCli(['config', 'check', file, ...args], io);
    return { code, text: io.lines.join('\n') };
  };

  it('a file with three different problems prints all three, each with its path', async () => {
    const r = await check(
      [
        'tenants:',
        '  - id: acme',
        '    allowed_models: [nope]', // unknown model alias
        '    api_keys: [{ value: sk-acme }]',
        'models:',
        '  m:',
        '    backends:',
        '      - provider: together', // preset without api_key
        '      - provider: anthropic', // anthropic without api_key
        '      - { provider: sim, sim: { mode: loud } }', // schema error
        '',
      ].join('\n'),
    );
    assert.equal(r.code, 1, r.text);
    assert.match(r.text, /4 error\(s\)/);
    for (const expected of [
      /tenants\[0\]\.allowed_models\[0\]: unknown model alias "nope" \(defined: m\)/,
      /models\.m\.backends\[0\]\.api_key: provider together needs an api_key: add api_key: \$\{TOGETHER_API_KEY\}/,
      /models\.m\.backends\[1\]\.api_key: provider anthropic needs an api_key: add api_key: \$\{ANTHROPIC_API_KEY\}/,
      /models\.m\.backends\[2\]\.sim\.mode: /,
    ])
      assert.match(r.text, expected);
    assert.doesNotMatch(r.text, /received undefined/);
  });

  it('an unset ${ENV} is reported once; a default is used', async () => {
    const r = await check(
      'models:\n  m:\n    backends:\n      - { provider: anthropic, api_key: "${NO_SUCH_KEY_VAR}" }\n      - { provider: openai, base_url: "${BASE:-http://127.0.0.1:1/v1}", api_key: x }\n',
    );
    assert.equal(r.code, 1);
    assert.equal(r.text.match(/NO_SUCH_KEY_VAR/g)?.length, 2, r.text); // the message names it twice
    assert.equal(r.text.split('\n').filter((l) => l.includes('backends[0].api_key')).length, 1, r.text);
    assert.match(r.text, /1 error\(s\)/);
  });

  it('an empty file and a file without models are errors', async () => {
    const empty = await check('');
    assert.equal(empty.code, 1);
    assert.match(empty.text, /the file is empty/);
    const comments = await check('# nothing yet\n');
    assert.equal(comments.code, 1);
    const noModels = await check('tenants:\n  - id: a\n    api_keys: [{ value: sk-a }]\n');
    assert.equal(noModels.code, 1);
    assert.match(noModels.text, /models: no models: define at least one/);
  });

  it('server.tls files that cannot be read are errors naming the field (start would fail on them)', async () => {
    const missing = join(dir, 'no-such.crt');
    const r = await check(
      `server: { tls: { cert_file: ${missing}, key_file: ${join(dir, 'no-such.key')} } }\nmodels:\n  m: { backends: [{ provider: sim }] }\n`,
    );
    assert.equal(r.code, 1, r.text);
    assert.match(r.text, /2 error\(s\)/);
    assert.match(r.text, new RegExp(`server\\.tls\\.cert_file: cannot read ${missing}: ENOENT`));
    assert.match(r.text, /server\.tls\.key_file: cannot read .*no-such\.key/);
    // `portico start` refuses the same config with the same message, before it listens.
    const file = join(dir, 'tls-missing.yaml');
    await writeFile(
      file,
      `server: { port: 0, tls: { cert_file: ${missing}, key_file: ${missing} } }\nmodels:\n  m: { backends: [{ provider: sim }] }\n`,
    );
    const err = await runCli(['start', '--config', file], capture()).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error);
    assert.match(err.message, /server\.tls\.cert_file: cannot read .*no-such\.crt/);
  });

  it('warnings do not fail the check: a tenant without keys, a fallback loop', async () => {
    const r = await check(
      'tenants:\n  - id: lonely\nmodels:\n  a: { fallbacks: [b], backends: [{ provider: sim }] }\n  b: { fallbacks: [a], backends: [{ provider: sim }] }\n',
    );
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /^ok: .*, 3 warning\(s\)$/m);
    assert.match(r.text, /tenants\[0\]\.api_keys: tenant lonely has no api_keys.* \(warning\)/);
    assert.match(r.text, /models\.a\.fallbacks\[0\]: fallbacks loop: a -> b -> a/);
  });

  it('--json for CI', async () => {
    const bad = await check('models:\n  m: { backends: [{ provider: together }] }\n', ['--json']);
    assert.equal(bad.code, 1);
    const report = JSON.parse(bad.text) as { ok: boolean; errors: Array<{ path: string; message: string }> };
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.errors.map((e) => e.path),
      ['models.m.backends[0].api_key'],
    );
    const good = await check('models:\n  m: { backends: [{ provider: sim }] }\n', ['--json']);
    assert.equal(good.code, 0);
    assert.equal((JSON.parse(good.text) as { ok: boolean }).ok, true);
  });

  it('the examples pass; the published JSON Schema accepts them and rejects a typo', async () => {
    const schema = JSON.parse(await readFile('schema/portico.schema.json', 'utf8')) as object;
    const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    const validate = ajv.compile(schema);
    const env = {
      TOGETHER_API_KEY: 'x',
      OPENROUTER_API_KEY: 'x',
      ANTHROPIC_API_KEY: 'x',
      OPENAI_API_KEY: 'x',
    };
    for (const name of (await readdir('examples')).filter((f) => f.endsWith('.yaml'))) {
      const io = capture(env);
      const code = await runCli(['config', 'check', join('examples', name)], io);
      assert.equal(code, 0, `${name}: ${io.lines.join('\n')}`);
      const doc = parse(await readFile(join('examples', name), 'utf8')) as Record<string, unknown>;
      // ${ENV} placeholders stand for strings; numbers written that way are checked by config check.
      const withoutServer = { ...doc, server: undefined, admin: undefined };
      assert.ok(
        validate(JSON.parse(JSON.stringify(withoutServer))),
        `${name}: ${ajv.errorsText(validate.errors)}`,
      );
    }
    assert.equal(validate({ modles: {} }), false);
    // `portico config schema` prints the published file.
    const io = capture();
    assert.equal(await runCli(['config', 'schema'], io), 0);
    assert.equal(io.lines.join('\n') + '\n', await readFile('schema/portico.schema.json', 'utf8'));
  });
});
