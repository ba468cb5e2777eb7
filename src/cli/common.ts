export { packageRoot } from '../lib/package-root.js';

export type Env = Record<string, string | undefined>;

export interface CliIO {
  env: Env;
  out: (line: string) => void;
  err: (line: string) => void;
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
