/**
 * deploy/Dockerfile lint: dockerfile-utils' validator (the rules of the VS Code Docker language
 * server: bad instructions, flags, JSON forms, ...) plus the house rules hadolint would otherwise
 * need a binary for: multi-stage, non-root final user, HEALTHCHECK on /health, `node dist/main.js start`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { freePort } from '../support/processes.js';
import { assertConfigAccepted, parseCli, ROOT, unreadEnv, dockerfileEnvReaders } from './support.js';

const text = readFileSync(join(process.cwd(), 'deploy/Dockerfile'), 'utf8');

test('the Dockerfile has no validator problems', () => {
  const diags = validate(text);
  assert.deepEqual(
    diags.map((d) => `line ${d.range.start.line + 1}: ${d.message}`),
    [],
  );
});

test('multi-stage, non-root, HEALTHCHECK on /health, starts node dist/main.js start', () => {
  const df = DockerfileParser.parse(text);
  const froms = df.getFROMs();
  assert.ok(froms.length >= 2, 'multi-stage');
  const instructions = df.getInstructions();
  const lastFrom = instructions.lastIndexOf(froms[froms.length - 1] as (typeof instructions)[number]);
  const final = instructions.slice(lastFrom);
  const kw = (k: string) => final.filter((i) => i.getKeyword() === k);
  const users = kw('USER');
  assert.ok(users.length > 0, 'final stage sets USER');
  const user = users[users.length - 1]?.getArgumentsContent() ?? '';
  assert.ok(!/^(root|0)(:|$)/.test(user), `final USER is not root (got ${user})`);
  assert.ok(kw('COPY').some((c) => /--from=build/.test(c.getTextContent())), 'copies artifacts from the build stage');
  assert.ok(!kw('COPY').some((c) => /\bsrc\b/.test(c.getArgumentsContent() ?? '')), 'no sources in the runtime stage');
  const hc = kw('HEALTHCHECK');
  assert.equal(hc.length, 1);
  assert.match(hc[0]?.getTextContent() ?? '', /\/health/);
  const entry = kw('ENTRYPOINT')[0]?.getArgumentsContent() ?? '';
  const cmd = kw('CMD')[0]?.getArgumentsContent() ?? '';
  assert.match(entry, /"node",\s*"dist\/main\.js"/);
  assert.match(cmd, /^\["start"/);
  for (const f of froms) assert.ok(!/:latest\b/.test(f.getTextContent()) , 'base images are pinned');
});

/** The runtime stage: its ENV, EXPOSE, CMD, and the files it copies from the build context (not --from). */
function runtimeStage() {
  const df = DockerfileParser.parse(text);
  const froms = df.getFROMs();
  const instructions = df.getInstructions();
  const final = instructions.slice(instructions.lastIndexOf(froms[froms.length - 1] as (typeof instructions)[number]));
  const env: Record<string, string> = {};
  for (const e of df.getENVs().filter((i) => final.includes(i)))
    for (const p of e.getProperties()) env[p.getName()] = p.getValue() ?? '';
  const json = (kw: string): string[] =>
    JSON.parse(final.filter((i) => i.getKeyword() === kw).pop()?.getArgumentsContent() ?? '[]') as string[];
  const contextCopies = final
    .filter((i) => i.getKeyword() === 'COPY' && !/--from=/.test(i.getTextContent() ?? ''))
    .map((i) => i.getArguments().map((a) => a.getValue()).filter((a) => !a.startsWith('--')));
  const runs = final.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
  const expose = Number(final.find((i) => i.getKeyword() === 'EXPOSE')?.getArgumentsContent());
  return { env, entrypoint: json('ENTRYPOINT'), cmd: json('CMD'), contextCopies, runs, expose };
}

/**
 * `docker run -p 8080:8080 IMAGE` with no mount and no arguments: the default command is parsed by
 * Portico's own CLI, the config it names must be in the image (with the prompt files it reads),
 * pass `portico config check` with the image's environment, listen on all interfaces at the EXPOSEd
 * port (127.0.0.1 inside a container cannot be reached through a published port), and keep its
 * state in a directory the unprivileged user can write (WORKDIR /app is root's).
 */
test("the image's default command runs: its config is in the image, accepted, on 0.0.0.0, state writable", async (t) => {
  const stage = runtimeStage();
  assert.deepEqual(stage.entrypoint, ['node', 'dist/main.js']);
  const { command, opts } = await parseCli(stage.cmd);
  assert.equal(command, 'start');
  const configPath = opts['config'];
  assert.ok(typeof configPath === 'string' && configPath.startsWith('/'), `CMD names an absolute --config: ${stage.cmd.join(' ')}`);
  // The image's filesystem, as far as the build context's files go.
  const root = mkdtempSync(join(tmpdir(), 'portico-image-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const args of stage.contextCopies) {
    const dest = args[args.length - 1] as string;
    for (const src of args.slice(0, -1)) {
      const to = dest.endsWith('/') && !statSync(join(ROOT, src)).isDirectory() ? join(root, dest, basename(src)) : join(root, dest);
      cpSync(join(ROOT, src), to, { recursive: true });
    }
  }
  const file = join(root, configPath);
  assert.ok(existsSync(file), `the default command's config ${configPath} is not in the image (COPY it, or change CMD)`);
  const r = await assertConfigAccepted(file, stage.env);
  assert.ok((r.summary?.models ?? 0) > 0);
  const { loadConfigFile } = await import('../../src/config/load.js');
  const { config } = await loadConfigFile(file, stage.env);
  const host = (opts['host'] as string | undefined) ?? config.server.host;
  assert.ok(['0.0.0.0', '::'].includes(host), `the gateway listens on ${host} in the container: a published port cannot reach it`);
  assert.equal((opts['port'] as number | undefined) ?? config.server.port, stage.expose, 'listens on the EXPOSEd port');
  if (config.state.kind === 'embedded') {
    const dir = config.state.data_dir;
    assert.ok(dir.startsWith('/') && !dir.startsWith('/app'), `state.data_dir ${dir}: relative to WORKDIR /app, which user node cannot write`);
    assert.ok(
      stage.runs.some((run) => /chown\b.*\bnode\b/.test(run) && [...run.matchAll(/\s(\/[\w/.-]+)/g)].some((m) => dir.startsWith(m[1] as string))),
      `the runtime stage creates ${dir} (or a parent) for user node`,
    );
  }
  assert.deepEqual(unreadEnv(Object.keys(stage.env), readFileSync(file, 'utf8'), [...dockerfileEnvReaders(), 'NODE_ENV', 'MALLOC_TRIM_THRESHOLD_']), [], 'every ENV has a reader');
});

test('.dockerignore keeps secrets and local state out of the build context', () => {
  const lines = readFileSync(join(process.cwd(), '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', '.git', '.env', 'dist']) assert.ok(lines.includes(p), p);
});

/**
 * The image recipe builds: the build stage's COPY and RUN steps, read from deploy/Dockerfile and
 * run as written (no Docker engine here) in a clean temporary copy — `npm ci --ignore-scripts`,
 * `npm run build`, `npm prune --omit=dev` — then the runtime stage's files are checked and
 * `node dist/main.js` answers. Slow (an install from the lock file): it runs under CI=true or
 * PORTICO_TEST_DOCKER_BUILD=1, and says so loudly when skipped.
 */
test('the Dockerfile build stage runs as written in a clean copy (npm ci, build, prune)', async (t) => {
  if (process.env.CI !== 'true' && process.env.PORTICO_TEST_DOCKER_BUILD !== '1') {
    t.skip('slow (~2 min): set CI=true or PORTICO_TEST_DOCKER_BUILD=1 to build the image recipe');
    return;
  }
  const df = DockerfileParser.parse(text);
  const instructions = df.getInstructions();
  const froms = df.getFROMs();
  const runtimeAt = instructions.indexOf(froms[1] as (typeof instructions)[number]);
  const build = instructions.slice(instructions.indexOf(froms[0] as (typeof instructions)[number]) + 1, runtimeAt);
  const runtime = instructions.slice(runtimeAt + 1);
  const app = mkdtempSync(join(tmpdir(), 'portico-docker-build-'));
  t.after(() => rmSync(app, { recursive: true, force: true }));
  const steps: string[] = [];
  for (const ins of build) {
    const kw = ins.getKeyword();
    const args = ins.getArguments().map((a) => a.getValue());
    if (kw === 'COPY') {
      assert.ok(!args.some((a) => a.startsWith('--')), `build-stage COPY without flags: ${ins.getTextContent()}`);
      const dest = args[args.length - 1] as string;
      for (const src of args.slice(0, -1)) {
        const to = dest.endsWith('/') || args.length > 2 ? join(app, dest, basename(src)) : join(app, dest);
        cpSync(join(process.cwd(), src), to, { recursive: true });
      }
      steps.push(`COPY ${args.join(' ')}`);
    } else if (kw === 'RUN') {
      const cmd = ins.getArgumentsContent() ?? '';
      steps.push(`RUN ${cmd}`);
      const r = spawnSync('bash', ['-euo', 'pipefail', '-c', cmd], {
        cwd: app,
        encoding: 'utf8',
        timeout: 540_000,
        env: { ...process.env, NODE_ENV: '', npm_config_prefer_offline: 'true', CI: 'true' },
      });
      assert.equal(r.status, 0, `${cmd} failed:\n${(r.stdout ?? '').slice(-3000)}\n${(r.stderr ?? '').slice(-3000)}`);
    } else assert.ok(['WORKDIR', 'ARG', 'ENV'].includes(kw), `unexpected build-stage instruction ${kw}`);
  }
  assert.ok(steps.some((s) => /npm ci --ignore-scripts/.test(s)), steps.join('\n'));
  // What the runtime stage copies exists, without dev dependencies.
  for (const c of runtime.filter((i) => i.getKeyword() === 'COPY')) {
    const src = c.getArguments().map((a) => a.getValue()).filter((a) => !a.startsWith('--'))[0] as string;
    if (/--from=build/.test(c.getTextContent() ?? ''))
      assert.ok(existsSync(join(app, src.replace(/^\/app\/?/, ''))), `runtime COPY source ${src} was built`);
    else assert.ok(existsSync(join(process.cwd(), src)), `runtime COPY source ${src} is in the build context`);
  }
  assert.ok(existsSync(join(app, 'dist/main.js')));
  assert.ok(existsSync(join(app, 'dist/console/index.html')), 'the console was built');
  assert.ok(existsSync(join(app, 'node_modules/fastify')), 'production dependencies kept');
  // (typescript itself stays: node-llama-cpp, an optional production dependency, depends on it.)
  for (const dev of ['vite', 'eslint', 'prettier', 'tsx'])
    assert.ok(!existsSync(join(app, 'node_modules', dev)), `dev dependency ${dev} pruned`);
  const v = spawnSync(process.execPath, ['dist/main.js', '--version'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
  assert.equal(v.status, 0, v.stderr);
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { version: string };
  assert.equal(v.stdout.trim(), pkg.version);
  const help = spawnSync(process.execPath, ['dist/main.js', 'start', '--help'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
  assert.equal(help.status, 0, help.stderr);
  // The runtime stage's files alone (package.json, production node_modules, the dist/ bundle) serve
  // a chat completion: every package the bundle leaves external resolves without dev dependencies.
  const image = join(app, 'runtime-stage');
  for (const p of ['package.json', 'node_modules', 'dist']) cpSync(join(app, p), join(image, p), { recursive: true });
  await answersFromRuntimeFiles(image);
});

async function answersFromRuntimeFiles(image: string): Promise<void> {
  const children: ChildProcess[] = [];
  const up = async (args: string[], url: string): Promise<void> => {
    const child = spawn(process.execPath, ['dist/main.js', ...args], {
      cwd: image,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NODE_ENV: 'production', PORTICO_ADMIN_TOKEN: 'image-admin' },
    });
    children.push(child);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-3000)));
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      if (child.exitCode !== null) break;
      if (await fetch(url).then((r) => r.ok, () => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`dist/main.js ${args.join(' ')} did not come up: ${err}`);
  };
  try {
    const [simPort, port] = [await freePort(), await freePort()];
    await up(['sim', '--port', String(simPort), '--mode', 'echo'], `http://127.0.0.1:${simPort}/v1/models`);
    const config = join(image, 'portico.yaml');
    writeFileSync(
      config,
      [
        `server: { host: 127.0.0.1, port: ${port} }`,
        `state: { kind: embedded, data_dir: "${join(image, 'data')}" }`,
        'tenants: [{ id: acme, prompt_policy: none, api_keys: [{ value: sk-image-test }] }]',
        `models: { default: { backends: [{ id: sim, provider: openai, base_url: "http://127.0.0.1:${simPort}/v1", model: m }] } }`,
        '',
      ].join('\n'),
    );
    await up(['start', '--config', config], `http://127.0.0.1:${port}/health`);
    const r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-image-test', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'from the image' }] }),
    });
    const body = (await r.json()) as { choices?: { message?: { content?: string } }[] };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.match(body.choices?.[0]?.message?.content ?? '', /from the image/);
  } finally {
    for (const c of children) c.kill('SIGKILL');
  }
}
