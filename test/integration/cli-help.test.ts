/**
 * The CLI's help and usage errors: every command and subcommand answers --help with exit 0 and
 * its usage (walking the whole commander tree in-process, plus a few spawned checks that nothing
 * is opened, asked for or started), and usage errors exit 2 with one line and the usage.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { allCommands, buildProgram, commandPath, runCli } from '../../src/cli/program.js';
import { UsageError, type CliIO } from '../../src/cli/common.js';
import { VERSION } from '../../src/version.js';

const run = promisify(execFile);

function capture(): CliIO & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { env: {}, lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l) };
}

async function spawnCli(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
      env: { ...process.env, PORTICO_ADMIN_TOKEN: '', ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('portico CLI help', () => {
  const tree = allCommands(buildProgram(capture(), () => undefined));
  const paths = tree.map((c) => commandPath(c).split(' ').slice(1));

  it('the tree has every command', () => {
    const names = paths.map((p) => p.join(' '));
    for (const expected of [
      'start',
      'sim',
      'engine',
      'config check',
      'config schema',
      'tenants add',
      'tenants list',
      'keys create',
      'keys list',
      'keys revoke',
      'usage report',
      'promptset generate',
      'bench run',
      'bench compare',
      'drill',
      'backup',
      'restore',
      'completion',
    ])
      assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
  });

  for (const path of paths) {
    const name = ['portico', ...path].join(' ');
    it(`${name} --help exits 0 with usage, options and (for commands that run) an example`, async () => {
      const io = capture();
      assert.equal(await runCli([...path, '--help'], io), 0);
      const text = io.lines.join('\n');
      assert.match(text, new RegExp(`^Usage: ${name.replace(/ /g, ' ')} `, 'm'));
      assert.match(text, /Options:/);
      assert.match(text, /-h, --help/);
      const cmd = tree[paths.indexOf(path)];
      if (cmd && cmd.commands.length === 0) assert.match(text, /Examples:\n {2}\$ .*portico /, name);
      // `portico help a b` says the same.
      if (path.length > 0) {
        const viaHelp = capture();
        assert.equal(await runCli(['help', ...path], viaHelp), 0);
        assert.equal(viaHelp.lines.join('\n'), text);
      }
    });
  }

  it('portico --help documents the exit codes; --version prints the version', async () => {
    const io = capture();
    assert.equal(await runCli(['--help'], io), 0);
    assert.match(io.lines.join('\n'), /Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n {2}3 /);
    const v = capture();
    assert.equal(await runCli(['--version'], v), 0);
    assert.deepEqual(v.lines, [VERSION]);
  });

  it('a command group without its subcommand, `portico` alone included, prints its help and exits 2', async () => {
    for (const argv of [[], ['config'], ['keys']]) {
      const io = capture();
      assert.equal(await runCli(argv, io), 2, argv.join(' '));
      assert.match(io.errors.join('\n'), /^Usage: portico.* \[command\]/, argv.join(' '));
    }
  });

  it('unknown options, missing arguments and bad values are usage errors: one line plus the usage', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['bench', 'compare', 'a.json'], /^missing required argument 'run-b'\nusage: portico bench compare /],
      [['config', 'check'], /^missing required argument 'file'\nusage: portico config check /],
      [['sim', '--colour', 'blue'], /^unknown option '--colour'\nusage: portico sim /],
      [
        ['sim', '--port', 'eighty'],
        /^option '-p, --port <n>' argument 'eighty' is invalid. expected a port number/,
      ],
      [['sim', '--mode', 'loud'], /Allowed choices are lorem, echo/],
      [['drill', 'earthquake'], /Allowed choices are slow-startup/],
      [['frobnicate'], /^unknown command 'frobnicate'/],
      [
        ['usage', 'report', '--month', '2026-13', '--admin-token', 'x'],
        /^--month 2026-13: there is no month 13.*\nusage: portico usage report \[options\]\n\(see: portico usage report --help\)$/,
      ],
      // Usage errors found by the command itself say the usage too, and are usage errors (2).
      [
        ['bench', 'run', '--promptset', 'p.jsonl', '--target', 'http://127.0.0.1:1', '--run-id', 'r'],
        /^give exactly one of --model M or --team T\nusage: portico bench run \[options\]\n/,
      ],
      [
        ['promptset', 'generate', '--categories', 'sql', '--out', 'never-written'],
        /^--categories: unknown category "sql" \(built-in: definition, .*text-to-sql\)\nusage: portico promptset generate /,
      ],
    ];
    for (const [argv, re] of cases) {
      const err = await runCli(argv, capture()).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof UsageError, `${argv.join(' ')} is a usage error`);
      assert.match(err.message, re, argv.join(' '));
    }
  });

  it('spawned: output piped into a reader that has gone (| head) ends quietly, with no stack trace', async () => {
    // `true` exits before portico writes, so every write meets a closed pipe (EPIPE).
    for (const args of ['--help', 'completion bash']) {
      const r = await run(
        'bash',
        ['-c', `${process.execPath} --import tsx src/main.ts ${args} | true; echo "rc=\${PIPESTATUS[0]}"`],
        { timeout: 30_000 },
      );
      assert.equal(r.stdout, 'rc=0\n', args);
      assert.equal(r.stderr, '', args);
    }
  });

  it('spawned: exit codes, and --help that neither opens a file, asks for a token nor starts a server', async () => {
    const tenants = await spawnCli(['tenants', '--help']);
    assert.equal(tenants.code, 0, tenants.stderr);
    assert.match(tenants.stdout, /Usage: portico tenants/);
    assert.doesNotMatch(tenants.stderr, /admin token/);
    const list = await spawnCli(['tenants', 'list', '--help']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /--admin-token/);
    const check = await spawnCli(['config', 'check', '--help']);
    assert.equal(check.code, 0);
    assert.doesNotMatch(check.stdout + check.stderr, /cannot read|ENOENT/);
    const start = await spawnCli(['start', '--help']);
    assert.equal(start.code, 0);
    assert.doesNotMatch(start.stdout + start.stderr, /listening/);
    const bad = await spawnCli(['sim', '--colour']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^portico: unknown option '--colour'\nusage: portico sim \[options\]/);
    const completion = await spawnCli(['completion', 'bash']);
    assert.equal(completion.code, 0);
    assert.match(completion.stdout, /complete -o default -F _portico portico/);
    assert.match(completion.stdout, /"bench run"\) echo ".*--promptset/);
  });
});
