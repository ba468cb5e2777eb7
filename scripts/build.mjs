// `npm run build`'s bundling step (after `tsc --noEmit` has type-checked src/): esbuild bundles
// src/main.ts into dist/ — one ES module for what every start loads, plus a chunk for each module
// imported on demand (the OpenAPI docs, the distributed state, the tracing SDK, CLI commands).
//
// Why a bundle: a start from tsc's one-file-per-module output loaded ~660 modules (139 of
// Portico's, the rest zod, yaml, fastify, prom-client, ...), and every module costs memory of its
// own (source string, module record, wrapper, compiled top-level code). Bundled, a fresh gateway's
// RSS is ~10 MB lower with the same code (bench/pipeline-report.md, Session 7).
//
// Packages stay in node_modules (external) when they are native addons, read files next to their
// own sources (__dirname: pino's worker threads, pg, the Swagger UI's static files), are loaded only
// when a config asks for them, or are reached through createRequire on purpose (undici's Pool
// without fetch: src/providers/undici-lite.ts). They need the production node_modules at run time,
// as before. test/integration/bundle.test.ts builds and runs a bundle; test/deploy/dockerfile.test.ts
// starts one after `npm prune --omit=dev`.
//
// Whitespace and syntax are minified, identifiers are kept (function names stay readable in stack
// traces); a linked source map (dist/*.js.map, paths only) maps traces back to src/ when Node runs
// with --enable-source-maps.
//
// Usage: node scripts/build.mjs [OUTDIR]   (default dist; bench A/Bs build a baseline elsewhere)
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '..');

export const EXTERNAL = [
  // native addons
  'better-sqlite3',
  'node-llama-cpp',
  // files next to their own sources (__dirname), worker threads
  'pino',
  'pg',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  '@fastify/static',
  // loaded on demand and large: they stay as they are in node_modules
  'ioredis',
  'gpt-tokenizer',
  '@opentelemetry/*',
  // reached through createRequire (src/providers/undici-lite.ts); the harness imports it whole
  'undici',
];

/**
 * prom-client's process CPU metric requires @opentelemetry/api when its module loads, for one use:
 * the trace and span ids of exemplars, which Portico does not enable. That require alone made every
 * start load the API's 44 files (~1 MB of RSS, ~1.3 MB of heap) with tracing off. In the bundle it
 * resolves to a stand-in that loads the real API on first use (the same package and version: it
 * stays external), so a gateway with tracing off never loads it. Other importers (the tracing SDK)
 * get the real package as before.
 */
const LAZY_OTEL_API = [
  '// prom-client: @opentelemetry/api on first use (scripts/build.mjs)',
  'let api;',
  "const load = () => (api ??= require('@opentelemetry/api'));",
  // Any member prom-client reads (it reads trace and context) is the real API's.
  'module.exports = new Proxy({}, { get: (_, name) => load()[name], has: (_, name) => name in load() });',
].join('\n');

const lazyOtelApiForPromClient = {
  name: 'lazy-otel-api-for-prom-client',
  setup(b) {
    b.onResolve({ filter: /^@opentelemetry\/api$/ }, (args) =>
      /[\\/]node_modules[\\/]prom-client[\\/]/.test(args.importer)
        ? { path: 'prom-client-otel-api', namespace: 'portico-lazy' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'portico-lazy' }, () => ({
      contents: LAZY_OTEL_API,
      loader: 'js',
      resolveDir: root,
    }));
  },
};

/** Bundle src/main.ts into outdir (emptied first, except a console build in it). */
export async function bundle(outdir) {
  // Chunk names carry a content hash: old ones would pile up.
  for (const name of list(outdir))
    if (name !== 'console') rmSync(join(outdir, name), { recursive: true, force: true });
  await build({
    entryPoints: [join(root, 'src/main.ts')],
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    external: EXTERNAL,
    plugins: [lazyOtelApiForPromClient],
    // CommonJS packages inside the bundle require() Node's built-ins.
    banner: {
      js: "import { createRequire as __porticoRequire } from 'node:module'; const require = __porticoRequire(import.meta.url);",
    },
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
}

function list(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  await bundle(resolve(root, process.argv[2] ?? 'dist'));
