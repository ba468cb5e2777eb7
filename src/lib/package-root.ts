import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let found: { root: string; version: string } | undefined;

/**
 * Portico's package root and version: the nearest directory above this module with Portico's
 * package.json. The same answer from src/ (tsx), from dist/ (the bundle, whose chunks all sit in
 * dist/) and from an installed package; the working directory if none is found.
 */
function locate(): { root: string; version: string } {
  if (found) return found;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'portico') return (found = { root: dir, version: pkg.version ?? '0.0.0' });
    } catch {
      // no package.json here (or not one we can read): look further up
    }
    dir = dirname(dir);
  }
  return (found = { root: process.cwd(), version: '0.0.0' });
}

export function packageRoot(): string {
  return locate().root;
}

export function packageVersion(): string {
  return locate().version;
}
