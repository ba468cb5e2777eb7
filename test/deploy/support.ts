/**
 * Shared checks for the deployment manifests (Dockerfile, Compose, Helm), which cannot be run here
 * (no Docker engine, no cluster): what a container would run is parsed with Portico's own command
 * tree, what it would mount is checked with `portico config check`'s code, and every environment
 * variable a manifest sets must have a reader.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { checkConfigFile, type CheckReport } from '../../src/config/check.js';
import { allCommands, buildProgram } from '../../src/cli/program.js';

export const ROOT = process.cwd();

export interface ParsedCommand {
  /** "start", "engine", "sim" */
  command: string;
  opts: Record<string, unknown>;
}

/**
 * Parse a container's command line (what follows `node dist/main.js`) as `portico` would, without
 * running it: unknown options, missing required options and bad values throw, as they would make
 * the container exit with status 2.
 */
export async function parseCli(argv: readonly string[]): Promise<ParsedCommand> {
  const io = { env: {}, out: () => undefined, err: () => undefined };
  const program = buildProgram(io, () => undefined);
  let parsed: ParsedCommand | undefined;
  for (const cmd of allCommands(program)) {
    cmd.exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    if (cmd.commands.length === 0 && cmd.parent)
      cmd.action((...args: unknown[]) => {
        const c = args[args.length - 1] as Command;
        parsed = { command: c.name(), opts: c.opts() };
      });
  }
  await program.parseAsync([...argv], { from: 'user' });
  assert.ok(parsed, `no command ran for: ${argv.join(' ')}`);
  return parsed;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let srcReaders: Set<string> | undefined;

/** Environment variables Portico's code reads itself (`env.NAME`, `env['NAME']`), outside tests. */
export function envReadBySrc(): Set<string> {
  if (srcReaders) return srcReaders;
  srcReaders = new Set();
  for (const file of walk(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\benv\??\.([A-Z][A-Z0-9_]*)\b|\benv\??\.?\[['"]([A-Z][A-Z0-9_]*)['"]\]/g))
      srcReaders.add((m[1] ?? m[2]) as string);
  }
  return srcReaders;
}

/** Names a config file refers to as ${NAME} or ${NAME:-default}. */
export function configEnvRefs(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)].map((m) => m[1] as string));
}

/**
 * The variables of `env` that nothing reads: not the config (`configText`), not Portico's code, not
 * `extraReaders` (e.g. the image's HEALTHCHECK, which reads PORTICO_PORT).
 */
export function unreadEnv(env: Iterable<string>, configText: string, extraReaders: Iterable<string> = []): string[] {
  const readers = new Set([...envReadBySrc(), ...configEnvRefs(configText), ...extraReaders]);
  return [...env].filter((name) => !readers.has(name));
}

/** `portico config check FILE` with this environment; fails the test with its report unless ok. */
export async function assertConfigAccepted(file: string, env: Record<string, string>): Promise<CheckReport> {
  const r = await checkConfigFile(file, env);
  assert.equal(r.ok, true, `portico config check ${file} rejects it:\n${JSON.stringify(r.errors, null, 2)}`);
  return r;
}

/** Variables the Dockerfile's runtime stage reads at run time (`process.env.NAME` in HEALTHCHECK). */
export function dockerfileEnvReaders(): Set<string> {
  const text = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  return new Set([...text.matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1] as string));
}
