/**
 * A gateway loads only what its config uses. `portico start` runs as a child process under
 * scripts/module-probe.mjs (a test-only --import hook that lists every ES module and CommonJS file
 * the process loaded, written on SIGUSR2):
 *
 * - the default embedded config (one tenant, no limits, tracing off, no L2 cache, no engine
 *   backend) loads neither the OpenTelemetry SDK nor its exporter, nor pg, ioredis,
 *   node-llama-cpp, the tokenizer, ajv or the OpenAPI docs' plugins, nor undici's fetch/WebSocket/cache parts;
 * - tracing on and a Redis L2 configured do load the SDK and ioredis (the probe sees them: the
 *   absence above is not the probe missing things). Distributed mode itself (pg + ioredis) is
 *   exercised by test/distributed.
 * - /docs (@fastify/swagger, @fastify/swagger-ui and the @fastify/static they use) is loaded by its
 *   first request; with the console off, nothing loads @fastify/static before that.
 * - Fastify's validator and serializer compilers (ajv, fast-json-stringify), loaded on first use
 *   (src/http/server.ts), still validate, coerce and serialise a route that brings schemas.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/processes.js';
import { demoConfig } from '../support/gateway.js';
import { Gateway } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { buildHttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/telemetry/logger.js';

interface Loaded {
  esm: string[];
  cjs: string[];
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Start `portico start` under the probe, wait for /health, return what it had loaded. */
async function loadedBy(configLines: string[], visit: string[] = []): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'portico-lazy-'));
  dirs.push(dir);
  const port = await freePort();
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    [
      `server: { host: 127.0.0.1, port: ${port} }`,
      'logging: { level: warn }',
      `state: { kind: embedded, data_dir: "${join(dir, 'data')}" }`,
      'tenants:',
      '  - id: acme',
      '    prompt_policy: none',
      '    api_keys: [{ value: sk-lazy-test }]',
      'models:',
      '  default:',
      '    backends: [{ id: up, provider: openai, base_url: "http://127.0.0.1:9/v1", model: m }]',
      ...configLines,
      '',
    ].join('\n'),
  );
  const report = join(dir, 'modules.json');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', './scripts/module-probe.mjs', 'src/main.ts', 'start', '--config', config],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PORTICO_MODULE_REPORT: report } },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  try {
    const until = Date.now() + 60_000;
    let up = false;
    while (!up && Date.now() < until) {
      if (child.exitCode !== null) throw new Error(`gateway exited: ${stderr}`);
      up = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(up, `gateway did not start: ${stderr}`);
    for (const path of visit) {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      assert.equal(r.status, 200, `${path}: ${r.status}`);
      await r.arrayBuffer();
    }
    child.kill('SIGUSR2');
    while (Date.now() < until) {
      try {
        const loaded = JSON.parse(await readFile(report, 'utf8')) as Loaded;
        return [...loaded.esm, ...loaded.cjs];
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error('the module probe wrote no report');
  } finally {
    child.kill('SIGKILL');
  }
}

const pkg = (name: string): RegExp => new RegExp(`/node_modules/${name.replace('/', '\\/')}/`);
const loads = (files: string[], name: string): boolean => files.some((f) => pkg(name).test(f));

describe('start-up loads only what the config uses', () => {
  it('the default embedded config loads no OTel SDK, pg, ioredis, engine, tokenizer or ajv', async () => {
    const files = await loadedBy([]);
    // The probe works: the gateway's own modules and its HTTP stack are there.
    assert.ok(loads(files, 'fastify'), 'fastify was loaded');
    assert.ok(
      files.some((f) => f.includes('/src/app.ts')),
      'src/app.ts was loaded',
    );
    assert.ok(loads(files, 'better-sqlite3'), 'the SQLite store was loaded');
    const absent = [
      '@opentelemetry/sdk-trace-base',
      '@opentelemetry/exporter-trace-otlp-http',
      '@opentelemetry/otlp-transformer',
      '@opentelemetry/resources',
      'pg',
      'pg-pool',
      'ioredis',
      'node-llama-cpp',
      'gpt-tokenizer',
      'ajv',
      // /docs is built on its first request.
      '@fastify/swagger',
      '@fastify/swagger-ui',
    ];
    for (const name of absent) assert.equal(loads(files, name), false, `${name} was loaded`);
    // undici: the Pool and its request API, not fetch/WebSocket/cache stores.
    assert.ok(loads(files, 'undici'), 'undici (the upstream Pool) was loaded');
    for (const part of ['lib/web/fetch/', 'lib/web/websocket/', 'lib/cache/', 'lib/mock/'])
      assert.equal(
        files.some((f) => f.includes(`/node_modules/undici/${part}`)),
        false,
        `undici/${part} was loaded`,
      );
  });

  it('tracing on loads the OTel SDK; a Redis L2 cache loads ioredis', async () => {
    const files = await loadedBy([
      'telemetry: { tracing: { enabled: true, endpoint: "http://127.0.0.1:9/v1/traces" } }',
      'cache: { enabled: true, l2: { enabled: true, url: "redis://127.0.0.1:9" } }',
    ]);
    assert.ok(loads(files, '@opentelemetry/sdk-trace-base'), 'the OTel SDK was loaded');
    assert.ok(loads(files, '@opentelemetry/exporter-trace-otlp-http'), 'the OTLP exporter was loaded');
    assert.ok(loads(files, 'ioredis'), 'ioredis was loaded');
    assert.equal(loads(files, 'pg'), false, 'pg was loaded');
  });

  it('the console off loads no @fastify/static; the first request under /docs loads the OpenAPI plugins', async () => {
    const consoleOff = 'admin: { console: false }';
    assert.equal(loads(await loadedBy([consoleOff]), '@fastify/static'), false, '@fastify/static was loaded');
    const files = await loadedBy([consoleOff], ['/docs/json', '/docs/static/index.html']);
    for (const name of ['@fastify/swagger', '@fastify/swagger-ui', '@fastify/static'])
      assert.ok(loads(files, name), `${name} was loaded`);
  });

  it('a route with schemas is still validated (ajv, with coercion) and serialised when first used', async () => {
    const loaded = await buildConfig(demoConfig(), { env: {} });
    const gateway = await Gateway.create(loaded, { defaultMetrics: false, logger: createLogger('silent') });
    const app = await buildHttpServer(gateway);
    try {
      app.get(
        '/lazy-compilers-probe',
        {
          schema: {
            querystring: {
              type: 'object',
              properties: { n: { type: 'integer', minimum: 1 } },
              required: ['n'],
            },
            response: { 200: { type: 'object', properties: { twice: { type: 'integer' } } } },
          },
        },
        async (request) => {
          const { n } = request.query as { n: number };
          // Coerced to a number by ajv; `secret` is not in the response schema, so it is dropped.
          return { twice: n * 2, secret: 'dropped by the serializer' };
        },
      );
      const ok = await app.inject({ method: 'GET', url: '/lazy-compilers-probe?n=21' });
      assert.equal(ok.statusCode, 200);
      assert.deepEqual(ok.json(), { twice: 42 });
      const bad = await app.inject({ method: 'GET', url: '/lazy-compilers-probe?n=zero' });
      assert.equal(bad.statusCode, 400);
    } finally {
      await app.close();
      await gateway.close();
    }
  });
});
