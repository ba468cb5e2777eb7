import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Env = Record<string, string | undefined>;

export interface CliIO {
  env: Env;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The package root (works from src/ under tsx and from dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(resolve(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The process's own standard streams. */
export function stdio(env: Env): CliIO {
  return {
    env,
    out: (l) => process.stdout.write(l + '\n'),
    err: (l) => process.stderr.write(l + '\n'),
  };
}
