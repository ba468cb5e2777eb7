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

/**
 * A gateway URL as a person types it: `127.0.0.1:8080` (no scheme) is taken as http://; a scheme
 * other than http(s) is a usage error. Trailing slashes are dropped.
 */
export function gatewayUrl(flag: string, v: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`;
  let ok = /^https?:\/\//i.test(url);
  try {
    new URL(url);
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError(`${flag} ${v}: use an http:// or https:// URL, e.g. http://127.0.0.1:8080`);
  return url.replace(/\/+$/, '');
}
