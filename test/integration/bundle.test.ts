/**
 * The production build is an esbuild bundle (scripts/build.mjs, `npm run build` → dist/). The rest
 * of the suite runs src/ through tsx; this file builds a bundle from the same sources into a
 * scratch directory inside the checkout (so node_modules resolves as it does from dist/) and runs
 * it as `npm start` would:
 *
 * - `--version` reads package.json from the bundle;
 * - `portico sim` and `portico start` from the bundle answer the official openai SDK (a chat
 *   answer, a stream), /metrics and the lazily built /docs (whose plugins stay in node_modules);
 * - the packages the bundle carries (fastify, zod, yaml, prom-client) are not loaded from
 *   node_modules, no Portico module is loaded from outside the bundle, and the externals a start
 *   does not need (OTel API and SDK, pg, ioredis, the tokenizer, the OpenAPI plugins) are not loaded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';
import { freePort } from '../support/processes.js';

const root = resolve(import.meta.dirname, '../..');
const KEY = 'sk-bundle-test';
let dir = '';
let outdir = '';
const children: ChildProcess[] = [];

before(async () => {
  await mkdir(join(root, 'test-results'), { recursive: true });
  dir = await mkdtemp(join(root, 'test-results', 'bundle-'));
  outdir = join(dir, 'dist');
  const r = spawnSync(process.execPath, ['scripts/build.mjs', outdir], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `scripts/build.mjs failed: ${r.stderr}`);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Start `node <bundle>/main.js ...args`; resolve once `url` answers 200. */
async function run(args: string[], url: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...args], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PORTICO_ADMIN_TOKEN: 'bundle-admin', ...env },
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited: ${stderr}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${args.join(' ')} did not come up: ${stderr}`);
}

describe('the dist bundle (scripts/build.mjs)', () => {
  it('prints the package version', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const v = spawnSync(process.execPath, [join(outdir, 'main.js'), '--version'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), pkg.version);
  });

  it('serves the simulator and the gateway, loading only the bundle and the externals it needs', async () => {
    const simPort = await freePort();
    await run(
      [join(outdir, 'main.js'), 'sim', '--port', String(simPort), '--mode', 'echo'],
      `http://127.0.0.1:${simPort}/v1/models`,
    );
    const port = await freePort();
    const config = join(dir, 'portico.yaml');
    await writeFile(
      config,
      [
        `server: { host: 127.0.0.1, port: ${port} }`,
        'logging: { level: warn }',
        'admin: { console: false }',
        `state: { kind: embedded, data_dir: "${join(dir, 'data')}" }`,
        'tenants:',
        '  - id: acme',
        '    prompt_policy: none',
        `    api_keys: [{ value: ${KEY} }]`,
        'models:',
        '  default:',
        `    backends: [{ id: sim, provider: openai, base_url: "http://127.0.0.1:${simPort}/v1", model: sim-model }]`,
        '',
      ].join('\n'),
    );
    const report = join(dir, 'modules.json');
    const gateway = await run(
      [
        '--import',
        join(root, 'scripts/module-probe.mjs'),
        join(outdir, 'main.js'),
        'start',
        '--config',
        config,
      ],
      `http://127.0.0.1:${port}/health`,
      { PORTICO_MODULE_REPORT: report },
    );
    // What the start loaded, before any request.
    gateway.kill('SIGUSR2');
    let loaded: { esm: string[]; cjs: string[] } | undefined;
    for (let i = 0; i < 100 && !loaded; i++) {
      loaded = await readFile(report, 'utf8').then(
        (t) => JSON.parse(t) as { esm: string[]; cjs: string[] },
        () => undefined,
      );
      if (!loaded) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(loaded, 'the module probe wrote no report');
    const files = [...loaded.esm, ...loaded.cjs].filter((f) => !f.startsWith('node:'));
    const fromPackage = (name: string): boolean => files.some((f) => f.includes(`/node_modules/${name}/`));
    assert.ok(
      files.some((f) => f.includes(`${outdir}/main.js`)),
      'the probe saw the bundle',
    );
    assert.ok(fromPackage('better-sqlite3'), 'the SQLite store (external) was loaded');
    for (const bundled of ['fastify', 'zod', 'yaml', 'prom-client', 'find-my-way'])
      assert.equal(fromPackage(bundled), false, `${bundled} was loaded from node_modules, not the bundle`);
    for (const lazy of [
      // prom-client's require of the OTel API is a stand-in in the bundle (scripts/build.mjs).
      '@opentelemetry/api',
      '@opentelemetry/sdk-trace-base',
      'pg',
      'ioredis',
      'gpt-tokenizer',
      '@fastify/swagger',
      '@fastify/swagger-ui',
    ])
      assert.equal(fromPackage(lazy), false, `${lazy} was loaded at start`);
    const outside = files.filter(
      (f) => !f.includes('/node_modules/') && !f.includes(outdir) && !f.includes('/scripts/module-probe.mjs'),
    );
    assert.deepEqual(outside, [], 'Portico modules loaded from outside the bundle');

    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: KEY, maxRetries: 0 });
    const answer = await client.chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'bundle check' }],
    });
    assert.match(answer.choices[0]?.message.content ?? '', /bundle check/);
    let streamed = '';
    const stream = await client.chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'streamed through the bundle' }],
      stream: true,
    });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
    assert.match(streamed, /streamed through the bundle/);

    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    assert.match(metrics, /tenant="acme"/);
    // prom-client's process CPU metric (whose module requires the stand-in OTel API) still reports.
    assert.match(metrics, /^process_cpu_seconds_total \d/m);
    const docs = await fetch(`http://127.0.0.1:${port}/docs/json`);
    assert.equal(docs.status, 200);
    const spec = (await docs.json()) as { openapi?: string; paths?: Record<string, unknown> };
    assert.ok(spec.openapi, 'an OpenAPI document');
    assert.ok(spec.paths?.['/admin/tenants'], 'with the admin routes');
    const ui = await fetch(`http://127.0.0.1:${port}/docs/static/index.html`);
    assert.equal(ui.status, 200, 'the Swagger UI files (from node_modules) are served');
  });
});
