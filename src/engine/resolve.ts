/**
 * Model references: a local GGUF path, or a Hugging Face reference `hf:owner/repo:QUANT` (or
 * `hf:owner/repo/file.gguf`) downloaded on first use into a cache directory and reused after.
 * A cached reference resolves with no network. When the hub cannot be reached the resolution
 * fails within `timeoutMs` (default 5 s) with a clear message: node-llama-cpp's downloader is only
 * started after a bounded reachability probe, and its own resolution step is bounded as well.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve as resolvePath } from 'node:path';
import { loadNodeLlamaCpp } from './engine.js';

export interface ResolveOptions {
  /** Where downloads go; default $PORTICO_MODELS_DIR or ~/.cache/portico/models. */
  cacheDir?: string;
  /** Hub base URL; default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Bound on reaching the hub before downloading. Default 5000 ms. */
  timeoutMs?: number;
  /** Download progress (bytes). */
  onProgress?: (downloaded: number, total: number) => void;
  env?: NodeJS.ProcessEnv;
}

export class ModelResolveError extends Error {
  override name = 'ModelResolveError';
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PORTICO_MODELS_DIR || join(homedir(), '.cache', 'portico', 'models');
}

interface HfRef {
  owner: string;
  repo: string;
  /** quant tag (Q4_K_M) or file name */
  selector: string;
}

export function parseHfRef(ref: string): HfRef | undefined {
  const m = /^hf:([\w.-]+)\/([\w.-]+)(?::([\w.-]+)|\/([\w./-]+\.gguf))?$/i.exec(ref);
  if (!m) return undefined;
  return { owner: m[1] as string, repo: m[2] as string, selector: (m[3] ?? m[4] ?? '') as string };
}

const INDEX = 'index.json';

async function readIndex(dir: string): Promise<Record<string, string>> {
  try {
    const v: unknown = JSON.parse(await readFile(join(dir, INDEX), 'utf8'));
    return v && typeof v === 'object' ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** What a cached file of a reference is called: a file reference's own name; for a quant, repo and quant. */
function cacheName(hf: HfRef): { repo: string; sel: string; file: string | undefined } {
  const file = hf.selector.toLowerCase().endsWith('.gguf') ? basename(hf.selector) : undefined;
  return { repo: hf.repo.toLowerCase().replace(/-gguf$/, ''), sel: hf.selector.toLowerCase(), file };
}

/**
 * A cached file for the reference: from the cache index, else by name (a file reference's own
 * name, or repo and quant in the file name).
 */
export async function findCached(ref: string, cacheDir: string): Promise<string | undefined> {
  const hf = parseHfRef(ref);
  if (!hf) return undefined;
  const indexed = (await readIndex(cacheDir))[ref];
  if (indexed && existsSync(join(cacheDir, indexed))) return join(cacheDir, indexed);
  const files = await readdir(cacheDir).catch(() => [] as string[]);
  const { repo, sel, file } = cacheName(hf);
  const hit = files.find((f) => {
    const l = f.toLowerCase();
    if (file !== undefined && l === file.toLowerCase()) return true;
    return l.endsWith('.gguf') && l.includes(repo) && (!sel || l.includes(sel));
  });
  return hit ? join(cacheDir, hit) : undefined;
}

/** Where to get the file of an hf: reference by hand, and the name to give it in the cache. */
function manualDownload(hf: HfRef, endpoint: string, cacheDir: string): string {
  const { repo, sel, file } = cacheName(hf);
  const repoUrl = `${endpoint}/${hf.owner}/${hf.repo}`;
  if (file !== undefined)
    return `Download ${repoUrl}/resolve/main/${hf.selector} elsewhere and put it in ${cacheDir} as ${file}`;
  const name = sel ? `${repo}-${sel}.gguf` : `${repo}.gguf`;
  const contains = sel ? `"${repo}" and "${sel}"` : `"${repo}"`;
  return `Download the ${hf.selector ? `${hf.selector} ` : ''}GGUF file from ${repoUrl} elsewhere and put it in ${cacheDir} as ${name} (a .gguf file whose name contains ${contains})`;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolve a model reference to a local file path (downloading `hf:` references when needed). */
export async function resolveModel(ref: string, opts: ResolveOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  if (!ref.startsWith('hf:')) return resolvePath(ref);
  const hf = parseHfRef(ref);
  if (!hf)
    throw new ModelResolveError(
      `bad model reference ${ref}: use hf:owner/repo:QUANT or hf:owner/repo/file.gguf`,
    );
  const cacheDir = opts.cacheDir ?? defaultCacheDir(env);
  const cached = await findCached(ref, cacheDir);
  if (cached) return cached;
  const endpoint = (opts.endpoint ?? env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  const timeoutMs = opts.timeoutMs ?? 5000;
  const started = Date.now();
  const unreachable = (why: string) =>
    new ModelResolveError(
      `cannot download ${ref}: ${endpoint} ${why} (offline?). ${manualDownload(hf, endpoint, cacheDir)}, or use a local GGUF path.`,
    );
  try {
    const res = await fetch(`${endpoint}/api/models/${hf.owner}/${hf.repo}`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status === 404)
      throw new ModelResolveError(`cannot download ${ref}: no such repository on ${endpoint}`);
  } catch (err) {
    if (err instanceof ModelResolveError) throw err;
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    throw unreachable(timedOut ? `was not reachable within ${timeoutMs} ms` : `was not reachable (${cause})`);
  }
  const nlc = await loadNodeLlamaCpp();
  await mkdir(cacheDir, { recursive: true });
  const left = Math.max(500, timeoutMs - (Date.now() - started));
  const downloader = await withTimeout(
    nlc.createModelDownloader({
      modelUri: ref,
      dirPath: cacheDir,
      showCliProgress: false,
      endpoints: { huggingFace: endpoint + '/' },
      ...(opts.onProgress
        ? {
            onProgress: (s: { downloadedSize: number; totalSize: number }) =>
              opts.onProgress?.(s.downloadedSize, s.totalSize),
          }
        : {}),
    }),
    left,
    () => unreachable(`did not resolve the file within ${timeoutMs} ms`),
  );
  const path = await downloader.download();
  const index = await readIndex(cacheDir);
  index[ref] = downloader.entrypointFilename;
  await writeFile(join(cacheDir, INDEX + '.tmp'), JSON.stringify(index, null, 2));
  await rename(join(cacheDir, INDEX + '.tmp'), join(cacheDir, INDEX));
  return path;
}
