/**
 * Summarise `node --cpu-prof` profiles (bench: BENCH_CPU_PROF=DIR npm run bench) by stage: self
 * time of every sampled function, grouped by where its code lives — Portico's own modules by
 * directory (src/http, src/pipeline, ...; dist/ in production), each dependency by package
 * (fastify, undici, prom-client, pino, better-sqlite3, ...), Node's internals by module (node:http,
 * node:net, streams, ...), plus GC, native code and idle time. Percentages are of busy (non-idle)
 * samples. Usage: tsx bench/profile-summary.ts FILE.cpuprofile [TOP_FUNCTIONS]
 *
 * dist/ is a bundle (scripts/build.mjs): a frame in one of its files is mapped back through the
 * file's source map (dist/*.js.map) to the src/ module or the dependency it came from, so stages and
 * functions read as they would from tsc's one-file-per-module output.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

const maps = new Map<string, { map: SourceMap; dir: string } | null>();
/** A frame in a bundled file, mapped to its original module and line (in place). */
function unbundle(frame: ProfileNode['callFrame']): void {
  if (!frame.url.startsWith('file://') || frame.url.includes('/node_modules/')) return;
  let entry = maps.get(frame.url);
  if (entry === undefined) {
    const file = fileURLToPath(frame.url);
    entry = existsSync(`${file}.map`)
      ? {
          map: new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload),
          dir: dirname(file),
        }
      : null;
    maps.set(frame.url, entry);
  }
  if (!entry) return;
  const hit = entry.map.findEntry(frame.lineNumber, frame.columnNumber) as {
    originalSource?: string;
    originalLine?: number;
  };
  if (!hit.originalSource) return;
  const source = hit.originalSource.startsWith('file://')
    ? hit.originalSource
    : pathToFileURL(resolve(entry.dir, hit.originalSource)).href;
  frame.url = source;
  frame.lineNumber = hit.originalLine ?? frame.lineNumber;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function stageOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return '(program: native, not attributed)';
  if (!url) return `native: ${functionName || '(anonymous)'}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `dep: ${nm[1]}`;
  const own = /\/(?:dist|src)\/([^/]+)(?:\/([^/]+))?/.exec(url);
  if (own && !url.startsWith('node:'))
    return `portico: ${own[1]}${own[2] && !own[2].endsWith('.js') && !own[2].endsWith('.ts') ? `/${own[2]}` : ''}`;
  if (url.startsWith('node:')) {
    const m = url.slice(5).split('/');
    const mod = m[m.length - 1] ?? url;
    return `node: ${m[0] === 'internal' ? (m.length > 2 ? `${m[1]}/${mod}` : mod) : mod}`.replace(
      /\.js$/,
      '',
    );
  }
  return `other: ${url}`;
}

const file = process.argv[2];
if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [TOP]');
const top = Number(process.argv[3] ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
for (const n of prof.nodes) unbundle(n.callFrame);
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
// Start-up (module loading, config, SQLite) is not the hot path: samples before the first one
// under beginTenantRequest (the first request) are left out.
const inRequest = (id: number): boolean => {
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur))
    if (byId.get(cur)?.callFrame.functionName === 'beginTenantRequest') return true;
  return false;
};
const firstPipeline = Math.max(0, prof.samples.findIndex(inRequest));
const self = new Map<number, number>();
prof.samples.forEach((id, i) => {
  if (i >= firstPipeline) self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
});
const stages = new Map<string, number>();
const fns = new Map<string, number>();
let busy = 0;
let idle = 0;
for (const [id, us] of self) {
  const n = byId.get(id);
  if (!n) continue;
  const st = stageOf(n);
  if (st === '(idle)') {
    idle += us;
    continue;
  }
  busy += us;
  stages.set(st, (stages.get(st) ?? 0) + us);
  const short = n.callFrame.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/');
  const key = `${n.callFrame.functionName || '(anonymous)'} ${short}:${n.callFrame.lineNumber + 1}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
}
// Inclusive time of Portico's own functions (the stages: authenticate, admission, dispatch,
// respond, finishRequest and its hooks...): each sample counts once for every distinct Portico
// function on its stack.
const inclusive = new Map<string, number>();
prof.samples.forEach((id, i) => {
  if (i < firstPipeline) return;
  const n0 = byId.get(id);
  if (!n0 || stageOf(n0) === '(idle)') return;
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    if (!n || !/\/(dist|src)\//.test(n.callFrame.url) || n.callFrame.url.includes('node_modules')) continue;
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(dist|src)\//, '')}:${n.callFrame.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
});
const pct = (us: number): string => `${((100 * us) / busy).toFixed(1)}%`;
const out: string[] = [];
out.push(`profile ${file}: busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`);
out.push('', '| stage (self time) | share of busy |', '|---|---|');
for (const [st, us] of [...stages].sort((a, b) => b[1] - a[1]).slice(0, 40))
  out.push(`| ${st} | ${pct(us)} |`);
out.push('', `| top ${top} functions (self time) | share of busy |`, '|---|---|');
for (const [f, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top))
  out.push(`| \`${f}\` | ${pct(us)} |`);
out.push('', `| top ${top} Portico functions (inclusive time) | share of busy |`, '|---|---|');
for (const [f, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top))
  out.push(`| \`${f}\` | ${pct(us)} |`);
process.stdout.write(out.join('\n') + '\n');
