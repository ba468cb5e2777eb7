/** Helpers shared by the benchmarks: ports, child processes from dist/, /proc CPU and RSS, stats. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * glibc malloc settings of Portico's image (`MALLOC_*` in deploy/Dockerfile's ENV). The benchmarks
 * give them to every process they measure — the floors too — so a figure is what the image runs
 * and the ratios stay like for like.
 */
export const IMAGE_MALLOC_ENV: Record<string, string> = Object.fromEntries(
  [...readFileSync(join(root, 'deploy/Dockerfile'), 'utf8').matchAll(/\b(MALLOC_[A-Z_]+)=(\S+)/g)].map(
    (m) => [m[1] as string, m[2] as string],
  ),
);
const CLK_TCK = 100;

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

export function startProcess(
  args: string[],
  opts: { cwd?: string; nodeArgs?: string[]; main?: string; env?: Record<string, string> } = {},
): ChildProcess {
  const main = opts.main ?? join(root, 'dist/main.js');
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), main, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...IMAGE_MALLOC_ENV, PORTICO_ADMIN_TOKEN: 'bench-admin', ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  child.stderr?.on('data', () => undefined);
  return child;
}

export async function waitHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

export async function procStats(pid: number): Promise<{ cpuSeconds: number; rssMb: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: (utime + stime) / CLK_TCK, rssMb: rssKb / 1024 };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

/** What the A/B tools (sequential-ab.ts, instructions.ts) can give a side of the governed tenant. */
export const GOVERNED_PARTS = ['rps', 'tpm', 'quota', 'audit'] as const;
export type Part = (typeof GOVERNED_PARTS)[number];

/** A comma list of governed parts ("" for none); undefined: all of them when `governed`, else none. */
export function partsOf(list: string | undefined, governed: boolean): Set<Part> {
  if (list === undefined) return new Set(governed ? GOVERNED_PARTS : []);
  const parts = list.split(',').filter((p) => p !== '');
  for (const p of parts)
    if (!(GOVERNED_PARTS as readonly string[]).includes(p))
      throw new Error(`unknown governed part "${p}" (one of ${GOVERNED_PARTS.join(', ')})`);
  return new Set(parts as Part[]);
}

/**
 * The A/B tools' gateway config: the bench config (one tenant, key auth, prompt policy none, cache
 * off, metrics, SQLite ledger) plus the governed parts asked for — requests/s and tokens/min limits,
 * a daily token quota, the audit log — as gateway-bench.ts's governed tenant has them all.
 */
export function abConfig(o: {
  port: number;
  upstream: string;
  dir: string;
  key: string;
  parts: Set<Part>;
}): string {
  const limits = [
    ...(o.parts.has('rps') ? ['requests_per_second: 1000000'] : []),
    ...(o.parts.has('tpm') ? ['tokens_per_minute: 1000000000'] : []),
  ];
  return [
    `server: { host: 127.0.0.1, port: ${o.port}, upstream_pool: { connections: 128 } }`,
    'logging: { level: warn }',
    'admin: { console: false }',
    `state: { kind: embedded, data_dir: "${join(o.dir, 'data')}" }`,
    'cache: { enabled: false }',
    ...(o.parts.has('audit')
      ? [`telemetry: { audit: { enabled: true, dir: "${join(o.dir, 'audit')}" } }`]
      : []),
    'tenants:',
    '  - id: ab',
    '    prompt_policy: none',
    `    api_keys: [{ value: ${o.key} }]`,
    ...(limits.length > 0 ? [`    limits: { ${limits.join(', ')} }`] : []),
    ...(o.parts.has('quota') ? ['    quota: { daily_tokens: 1000000000000 }'] : []),
    'models:',
    '  bench:',
    `    backends: [{ id: mock, provider: openai, base_url: "${o.upstream}/v1", model: mock-model }]`,
    '',
  ].join('\n');
}
