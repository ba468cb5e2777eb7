/**
 * The Helm chart, validated offline: values.schema.json (ajv) against values.yaml and bad values;
 * `helm lint` + `helm template` with a real helm (see test/helpers/helm.ts); every rendered object
 * against the Kubernetes schemas (kubernetes-models); the per-tenant objects for acme-corp and
 * closed-ai; the PrometheusRule built from the same rule files promtool tests; and what the pods
 * would run: the gateway's rendered portico.yaml through `portico config check` with the pod's
 * environment, the gateway's and engine's args through Portico's own CLI parser, and a reader for
 * every environment variable the chart sets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { ServerSchema } from '../../src/config/schema.js';
import { findHelm } from '../helpers/helm.js';
import { parseManifests, validateManifests, type Manifest } from '../helpers/k8s-validate.js';
import { loadConfigFile } from '../../src/config/load.js';
import type { PorticoConfig } from '../../src/config/schema.js';
import { assertConfigAccepted, dockerfileEnvReaders, parseCli, unreadEnv } from './support.js';

const CHART = join(process.cwd(), 'deploy/helm/portico');
const MONITORING_RULES = join(process.cwd(), 'deploy/monitoring/prometheus/rules');
const TENANT_KINDS = ['ConfigMap', 'LimitRange', 'Namespace', 'NetworkPolicy', 'ResourceQuota', 'Role', 'RoleBinding'];

const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as object;
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const validateValues = new Ajv({ allErrors: true, strict: false }).compile(schema);

function helmOrSkip(t: { skip(msg: string): void }): string | null {
  const { bin, why } = findHelm();
  if (bin) return bin;
  const msg = `helm is not available (${why}); chart rendering NOT validated`;
  if (process.env['CI'] === 'true') throw new Error(msg);
  t.skip(msg);
  return null;
}

function render(helm: string, chart: string, extraArgs: string[] = []): Manifest[] {
  const out = execFileSync(helm, ['template', 'portico', chart, '--namespace', 'portico', ...extraArgs], { encoding: 'utf8', stdio: 'pipe', timeout: 60_000 });
  return parseManifests(out);
}

test('values.schema.json accepts values.yaml and the two demo tenants, rejects bad tenants', () => {
  assert.equal(validateValues(values), true, JSON.stringify(validateValues.errors));
  const tenants = values['tenants'] as Array<{ id: string }>;
  assert.deepEqual(
    tenants.map((t) => t.id),
    ['acme-corp', 'closed-ai'],
  );
  const bad = (tenant: unknown): boolean => validateValues({ ...values, tenants: [tenant] });
  assert.equal(bad({ id: 'Acme_Corp', systemPrompt: 'x' }), false, 'id must be a DNS label');
  assert.equal(bad({ id: 'acme' }), false, 'systemPrompt is required');
  assert.equal(bad({ id: 'acme', systemPrompt: 'x', quota: { 'limits.cpu': 'lots' } }), false, 'quantities are checked');
  assert.equal(bad({ id: 'acme', systemPrompt: 'x', sytemPrompt: 'typo' }), false, 'unknown keys are rejected');
  assert.equal(bad({ id: 'new-tenant', systemPrompt: 'You are ...' }), true, 'a minimal tenant is one small entry');
});

test('helm lint and helm template: every object passes the Kubernetes schemas', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  execFileSync(helm, ['lint', CHART, '--strict', '--namespace', 'portico'], { stdio: 'pipe', timeout: 60_000 });
  const docs = render(helm, CHART, [
    '--set', 'secrets.PORTICO_ADMIN_TOKEN=test',
    '--set', 'redis.url=redis://redis:6379',
    '--set', 'postgres.url=postgres://portico@postgres:5432/portico',
  ]);
  assert.deepEqual(await validateManifests(docs), []);
  const kinds = new Set(docs.map((d) => d.kind));
  for (const k of ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ServiceMonitor', 'StatefulSet', 'Secret', 'ConfigMap', 'ServiceAccount']) {
    assert.ok(kinds.has(k), `renders a ${k}`);
  }
  const dep = docs.find((d) => d.kind === 'Deployment') as unknown as {
    spec: { template: { spec: { securityContext: { runAsNonRoot: boolean }; containers: Array<Record<string, { httpGet?: { path: string } }>> } } };
  };
  const c = dep.spec.template.spec.containers[0] as Record<string, { httpGet?: { path: string } }>;
  assert.equal(c['livenessProbe']?.httpGet?.path, '/health');
  assert.equal(c['readinessProbe']?.httpGet?.path, '/ready');
  assert.equal(c['startupProbe']?.httpGet?.path, '/startup');
  assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
  const sts = docs.find((d) => d.kind === 'StatefulSet') as unknown as { spec: { volumeClaimTemplates: Array<{ metadata: { name: string } }> } };
  assert.equal(sts.spec.volumeClaimTemplates[0]?.metadata.name, 'model-cache');
});

test('each gateway pod gets its own ledger journal volume, and a state config without journal_dir points at it', (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const docs = render(helm, CHART, ['--set', 'gateway.config.state.kind=distributed']);
  const dep = docs.find((d) => d.kind === 'Deployment') as unknown as {
    spec: { template: { spec: { volumes: Array<{ name: string; emptyDir?: { sizeLimit?: string } }>; containers: Array<{ volumeMounts: Array<{ name: string; mountPath: string }> }> } } };
  };
  const spec = dep.spec.template.spec;
  assert.equal(spec.volumes.find((v) => v.name === 'journal')?.emptyDir?.sizeLimit, '1Gi');
  assert.equal(spec.containers[0]?.volumeMounts.find((m) => m.name === 'journal')?.mountPath, '/var/lib/portico/journal');
  const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('-config')) as unknown as { data: Record<string, string> };
  const cfg = parse(cm.data['portico.yaml'] ?? '') as { state: { journal_dir: string } };
  assert.equal(cfg.state.journal_dir, '/var/lib/portico/journal');
  // An explicit journal_dir is kept.
  const own = render(helm, CHART, ['--set', 'gateway.config.state.kind=distributed', '--set', 'gateway.config.state.journal_dir=/data/j']);
  const cm2 = own.find((d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('-config')) as unknown as { data: Record<string, string> };
  assert.equal((parse(cm2.data['portico.yaml'] ?? '') as { state: { journal_dir: string } }).state.journal_dir, '/data/j');
});

test('the gateway pod outlives its drain: terminationGracePeriodSeconds follows server.drain_timeout_ms', (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const grace = (args: string[]): number | undefined => {
    const dep = render(helm, CHART, args).find((d) => d.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { terminationGracePeriodSeconds?: number } } };
    };
    return dep.spec.template.spec.terminationGracePeriodSeconds;
  };
  // Kubernetes' default is 30 s, the gateway's default drain alone: SIGKILL came while the gateway
  // was still draining or closing its ledger writer and journal.
  const defaultDrainS = ServerSchema.parse({}).drain_timeout_ms / 1000;
  assert.equal(grace([]), 5 + defaultDrainS + 15, "preStop sleep + the gateway's default drain + closeGraceSeconds");
  const dir = mkdtempSync(join(tmpdir(), 'portico-helm-'));
  try {
    // From a values file, as operators set it (YAML numbers reach the template as floats).
    const extra = join(dir, 'drain.yaml');
    writeFileSync(extra, 'gateway:\n  config:\n    server:\n      drain_timeout_ms: 120000\n');
    assert.equal(grace(['-f', extra]), 5 + 120 + 15);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(grace(['--set', 'gateway.config.server.drain_timeout_ms=60500']), 5 + 61 + 15, 'rounded up to seconds');
  assert.equal(
    grace([
      '--set', 'gateway.config.server.drain_timeout_ms=0',
      '--set', 'gateway.shutdown.closeGraceSeconds=20',
      '--set', 'gateway.shutdown.preStopSleepSeconds=0',
    ]),
    20,
  );
  assert.throws(() => render(helm, CHART, ['--set', 'gateway.shutdown.closeGraceSeconds=2']), /minimum/);
});

test('the gateway keeps serving while it leaves the endpoints: a preStop sleep before the SIGTERM', (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  type Container = { name: string; lifecycle?: { preStop?: { exec?: { command?: string[] } } } };
  const gateway = (args: string[]): Container | undefined =>
    (
      render(helm, CHART, args).find(
        (d) => d.kind === 'Deployment' && (d.metadata.name as string).endsWith('-gateway'),
      ) as unknown as { spec: { template: { spec: { containers: Container[] } } } } | undefined
    )?.spec.template.spec.containers.find((c) => c.name === 'gateway');
  assert.deepEqual(gateway([])?.lifecycle?.preStop?.exec?.command, ['sleep', '5']);
  assert.deepEqual(gateway(['--set', 'gateway.shutdown.preStopSleepSeconds=12'])?.lifecycle?.preStop?.exec?.command, [
    'sleep',
    '12',
  ]);
  assert.equal(gateway(['--set', 'gateway.shutdown.preStopSleepSeconds=0'])?.lifecycle, undefined, '0: no hook');
  assert.throws(() => render(helm, CHART, ['--set', 'gateway.shutdown.preStopSleepSeconds=-1']), /minimum/);
});

test('per-tenant objects for acme-corp and closed-ai: complete, isolated, schema-valid', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const docs = render(helm, CHART);
  for (const id of ['acme-corp', 'closed-ai']) {
    const ns = `tenant-${id}`;
    const mine = docs.filter((d) => d.metadata.name === ns || d.metadata.namespace === ns);
    assert.deepEqual(mine.map((d) => d.kind).sort(), TENANT_KINDS, id);
    assert.deepEqual(await validateManifests(mine), [], id);
    const np = mine.find((d) => d.kind === 'NetworkPolicy') as unknown as {
      spec: { podSelector: object; policyTypes: string[]; ingress: unknown[]; egress: Array<{ to: Array<{ namespaceSelector: { matchLabels: Record<string, string> } }>; ports: Array<{ port: number }> }> };
    };
    assert.deepEqual(np.spec.podSelector, {}, 'applies to every pod in the namespace');
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(np.spec.ingress, []);
    assert.deepEqual(
      np.spec.egress.map((e) => [e.to[0]?.namespaceSelector.matchLabels['kubernetes.io/metadata.name'], e.ports.map((p) => p.port)]),
      [
        ['portico', [8080]],
        ['kube-system', [53, 53]],
      ],
    );
    const cm = mine.find((d) => d.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
    assert.match(cm.data['system_prompt.txt'] ?? '', /You are an AI assistant for/);
    const quota = mine.find((d) => d.kind === 'ResourceQuota') as unknown as { spec: { hard: Record<string, string> } };
    assert.ok(quota.spec.hard['limits.cpu'] && quota.spec.hard['pods']);
  }
  const acmeQuota = docs.find((d) => d.kind === 'ResourceQuota' && d.metadata.namespace === 'tenant-acme-corp') as unknown as { spec: { hard: Record<string, string> } };
  assert.equal(acmeQuota.spec.hard['limits.cpu'], '2', 'a tenant override wins over tenantDefaults');
  assert.equal(acmeQuota.spec.hard['pods'], '20', 'defaults fill the rest');
});

test('adding a tenant is one values entry; duplicate ids and bad ids fail', (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const dir = mkdtempSync(join(tmpdir(), 'portico-helm-'));
  try {
    const extra = join(dir, 'extra.yaml');
    const tenants = [...(values['tenants'] as object[]), { id: 'globex', systemPrompt: 'You are an AI assistant for Globex.' }];
    writeFileSync(extra, JSON.stringify({ tenants }));
    const docs = render(helm, CHART, ['-f', extra]);
    assert.deepEqual(
      docs
        .filter((d) => d.metadata.namespace === 'tenant-globex' || d.metadata.name === 'tenant-globex')
        .map((d) => d.kind)
        .sort(),
      TENANT_KINDS,
    );
    writeFileSync(extra, JSON.stringify({ tenants: [...tenants, { id: 'globex', systemPrompt: 'again' }] }));
    assert.throws(() => render(helm, CHART, ['-f', extra]), /appears twice/);
    writeFileSync(extra, JSON.stringify({ tenants: [{ id: 'Not_OK', systemPrompt: 'x' }] }));
    assert.throws(() => render(helm, CHART, ['-f', extra]), /does not match pattern/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PrometheusRule objects come from the same rule files promtool tests', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const dir = mkdtempSync(join(tmpdir(), 'portico-helm-'));
  try {
    const chart = join(dir, 'portico');
    cpSync(CHART, chart, { recursive: true });
    const rulesDir = join(chart, 'files/rules');
    let expected: string[];
    if (existsSync(MONITORING_RULES)) {
      // The chart's copies must be identical to the originals (scripts/sync-chart-rules.mjs).
      execFileSync(process.execPath, ['scripts/sync-chart-rules.mjs', '--check'], { stdio: 'pipe' });
      expected = readdirSync(rulesDir).filter((n) => /\.ya?ml$/.test(n));
    } else {
      t.diagnostic('deploy/monitoring/prometheus/rules is not on this branch yet: using a sample rule file');
      writeFileSync(
        join(rulesDir, 'sample.yml'),
        'groups:\n  - name: portico.sample\n    rules:\n      - alert: PorticoDown\n        expr: up{job="portico"} == 0\n        for: 1m\n        labels: {severity: critical}\n',
      );
      expected = ['sample.yml'];
    }
    const docs = render(helm, chart).filter((d) => d.kind === 'PrometheusRule');
    assert.equal(docs.length, expected.length);
    assert.deepEqual(await validateManifests(docs), []);
    for (const d of docs) {
      const groups = (d as unknown as { spec: { groups: Array<{ rules: unknown[] }> } }).spec.groups;
      assert.ok(groups.length > 0 && groups.every((g) => g.rules.length > 0));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the Kubernetes schema check does reject a broken object', async () => {
  const broken = parseManifests(
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i, ports: [{containerPort: http}]}]\n' +
      '---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n}\nspec: {policyTypes: [Sideways]}\n',
  );
  const problems = await validateManifests(broken);
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.match(problems[0] ?? '', /containerPort/);
});

interface Container {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  envFrom?: Array<{ secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  containers: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string }; emptyDir?: object }>;
}
type Workload = Manifest & { spec: { replicas?: number; template: { spec: PodSpec } } };

function workload(docs: Manifest[], kind: string, suffix: string): Workload {
  const w = docs.find((d) => d.kind === kind && d.metadata.name.endsWith(suffix));
  assert.ok(w, `renders the ${kind} *${suffix}`);
  return w as Workload;
}

function container(w: Workload, name: string): Container {
  const c = w.spec.template.spec.containers.find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
}

/**
 * What the gateway pod would run, checked as the pod would see it: its args parsed by Portico's
 * CLI, the ConfigMap's files at the config mount, its environment (plain values and the Secrets it
 * takes; `existingSecretEnv` stands for an existing Secret the chart does not render), then
 * `portico config check`, host, port, writable state paths and a reader for every variable.
 */
async function checkGateway(
  docs: Manifest[],
  existingSecretEnv: Record<string, string> = {},
): Promise<{ config: PorticoConfig; env: Record<string, string>; dep: Workload }> {
  const dep = workload(docs, 'Deployment', '-gateway');
  const c = container(dep, 'gateway');
  const { command, opts } = await parseCli(c.args ?? []);
  assert.equal(command, 'start');
  const configPath = opts['config'] as string;
  const mount = (c.volumeMounts ?? []).find((m) => configPath.startsWith(m.mountPath + '/'));
  assert.ok(mount, `${configPath} is on a mounted volume`);
  const cmName = dep.spec.template.spec.volumes?.find((v) => v.name === mount.name)?.configMap?.name;
  const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === cmName) as
    | (Manifest & { data: Record<string, string> })
    | undefined;
  assert.ok(cm, `the ConfigMap ${String(cmName)} mounted at ${mount.mountPath}`);
  const root = mkdtempSync(join(tmpdir(), 'portico-helm-pod-'));
  try {
    const dir = join(root, mount.mountPath);
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(cm.data)) writeFileSync(join(dir, name), text);
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) env[e.name] = e.value ?? '';
    for (const from of c.envFrom ?? []) {
      const name = from.secretRef?.name;
      const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === name) as
        | (Manifest & { stringData?: Record<string, string> })
        | undefined;
      Object.assign(env, secret ? secret.stringData : existingSecretEnv);
    }
    const file = join(root, configPath);
    await assertConfigAccepted(file, env);
    const { config } = await loadConfigFile(file, env);
    const host = (opts['host'] as string | undefined) ?? config.server.host;
    assert.ok(['0.0.0.0', '::'].includes(host), `the gateway listens on ${host}: probes and the Service cannot reach it`);
    assert.equal(config.server.port, c.ports?.[0]?.containerPort, 'listens on its containerPort');
    const writable = (c.volumeMounts ?? []).filter((m) => !m.readOnly).map((m) => m.mountPath);
    const onWritable = (p: string): boolean => writable.some((w) => p === w || p.startsWith(w + '/'));
    if (config.state.kind !== 'memory') {
      const journal = config.state.journal_dir;
      assert.ok(journal && onWritable(journal), `state.journal_dir ${String(journal)} is on a writable volume (root is read-only)`);
    }
    if (config.state.kind === 'embedded')
      assert.ok(onWritable(config.state.data_dir), `state.data_dir ${config.state.data_dir} is on a writable volume`);
    const text = readFileSync(file, 'utf8');
    assert.deepEqual(unreadEnv(Object.keys(env), text, dockerfileEnvReaders()), [], 'every gateway variable has a reader');
    return { config, env, dep };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The engine StatefulSet's args parse (--model is required), on all interfaces, where the gateway looks. */
async function checkEngine(docs: Manifest[], gatewayEnv: Record<string, string>): Promise<void> {
  const sts = workload(docs, 'StatefulSet', '-engine');
  const c = container(sts, 'engine');
  const { command, opts } = await parseCli(c.args ?? []);
  assert.equal(command, 'engine');
  assert.ok(typeof opts['model'] === 'string' && opts['model'] !== '', '--model');
  assert.ok(['0.0.0.0', '::'].includes(opts['host'] as string), `--host ${String(opts['host'])}: unreachable from the gateway`);
  assert.equal(opts['port'], c.ports?.[0]?.containerPort, 'listens on its containerPort');
  const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === sts.metadata.name) as
    | (Manifest & { spec: { ports: Array<{ port: number }> } })
    | undefined;
  assert.ok(svc, 'the engine Service');
  assert.equal(gatewayEnv['PORTICO_ENGINE_URL'], `http://${svc.metadata.name}:${svc.spec.ports[0]?.port}`);
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
  assert.deepEqual(unreadEnv(Object.keys(env), ''), [], 'every engine variable has a reader in src/');
  const modelsDir = (opts['modelsDir'] as string | undefined) ?? env['PORTICO_MODELS_DIR'];
  const cache = (c.volumeMounts ?? []).find((m) => m.name === 'model-cache');
  assert.ok(modelsDir && cache?.mountPath === modelsDir, `models go to the model-cache volume (${String(modelsDir)})`);
}

test("the chart's defaults run: the gateway accepts its config (embedded, one replica), the engine gets --model", async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  // `helm install portico deploy/helm/portico` with nothing set rendered portico.yaml: {}, which the
  // gateway refuses ("no models"), and an engine without --model (exit 2).
  const docs = render(helm, CHART);
  const { config, env, dep } = await checkGateway(docs);
  assert.equal(config.state.kind, 'embedded', 'no redis.url / postgres.url: the embedded store');
  assert.equal(dep.spec.replicas, 1, 'the embedded store is one replica');
  assert.ok(!docs.some((d) => d.kind === 'HorizontalPodAutoscaler' || d.kind === 'PodDisruptionBudget'), 'no HPA/PDB for one replica');
  // One gateway tenant per chart tenant, with the prompt the chart mounts for it.
  const tenants = values['tenants'] as Array<{ id: string; systemPrompt: string }>;
  assert.deepEqual(config.tenants.map((x) => x.id), tenants.map((x) => x.id));
  assert.ok(config.tenants.every((x) => x.system_prompt_file === `${x.id}.system_prompt.txt`));
  // `default` is the engine, with the in-process simulator as fallback while it loads.
  const engine = config.models['default'];
  assert.deepEqual(engine?.backends.map((b) => ('base_url' in b ? b.base_url : b.provider)), [`${env['PORTICO_ENGINE_URL']}/v1`]);
  assert.deepEqual(engine?.fallbacks, ['sim']);
  await checkEngine(docs, env);
});

test('the documented helm install (Redis, PostgreSQL, admin token) runs distributed; existingSecret keeps the URLs', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const urls = [
    '--set', 'redis.url=redis://redis.portico:6379/0',
    '--set', 'postgres.url=postgres://portico:pw@postgres.portico:5432/portico',
  ];
  const docs = render(helm, CHART, [
    '--set', 'image.repository=registry.example.com/portico', '--set', 'image.tag=0.1.0',
    ...urls,
    '--set', 'secrets.PORTICO_ADMIN_TOKEN=admin-token',
  ]);
  const { config, env } = await checkGateway(docs);
  assert.equal(config.state.kind, 'distributed');
  if (config.state.kind === 'distributed') {
    assert.equal(config.state.redis.url, 'redis://redis.portico:6379/0');
    assert.equal(config.state.postgres.url, 'postgres://portico:pw@postgres.portico:5432/portico');
  }
  assert.equal(env['PORTICO_ADMIN_TOKEN'], 'admin-token');
  assert.ok(docs.some((d) => d.kind === 'HorizontalPodAutoscaler'), 'distributed: the HPA scales it');
  await checkEngine(docs, env);
  // The "or --set existingSecret=…" variant: the URLs set in values still reach the gateway (they
  // were dropped: the chart rendered no Secret once existingSecret was set).
  const withExisting = render(helm, CHART, [...urls, '--set', 'existingSecret=portico-secrets']);
  const r = await checkGateway(withExisting, { PORTICO_ADMIN_TOKEN: 'from-existing-secret' });
  assert.equal(r.config.state.kind, 'distributed');
  assert.equal(r.env['PORTICO_REDIS_URL'], 'redis://redis.portico:6379/0');
  const refs = container(r.dep, 'gateway').envFrom?.map((f) => f.secretRef?.name);
  assert.ok(refs?.includes('portico-secrets'), 'the existing Secret is used too');
});

test('gateway.config: each section left out gets the default; host, port, journal are filled in', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  // Only a drain timeout set: the rest of the defaults still make a config the gateway accepts.
  let { config } = await checkGateway(render(helm, CHART, ['--set', 'gateway.config.server.drain_timeout_ms=120000']));
  assert.equal(config.server.drain_timeout_ms, 120000);
  // No engine: `default` is the simulator, and the gateway is not given an engine URL.
  const noEngine = render(helm, CHART, ['--set', 'engine.enabled=false']);
  const r = await checkGateway(noEngine);
  assert.deepEqual(Object.keys(r.config.models), ['default']);
  assert.equal(r.config.models['default']?.backends[0]?.provider, 'sim');
  assert.equal(r.env['PORTICO_ENGINE_URL'], undefined);
  assert.ok(!noEngine.some((d) => d.kind === 'StatefulSet'));
  // A config of one's own is used as it is; tracing goes to otel.endpoint.
  const dir = mkdtempSync(join(tmpdir(), 'portico-helm-'));
  try {
    const own = join(dir, 'own.yaml');
    writeFileSync(
      own,
      JSON.stringify({
        engine: { enabled: false },
        otel: { endpoint: 'http://tempo.observability:4318' },
        gateway: {
          port: 9000,
          config: {
            tenants: [{ id: 'globex', system_prompt: 'Be brief.' }],
            models: { chat: { backends: [{ provider: 'vllm', base_url: 'http://vllm.ml:8000/v1' }] } },
          },
        },
      }),
    );
    ({ config } = await checkGateway(render(helm, CHART, ['-f', own])));
    assert.deepEqual(Object.keys(config.models), ['chat']);
    assert.deepEqual(config.tenants.map((x) => x.id), ['globex']);
    assert.equal(config.server.port, 9000);
    assert.equal(config.telemetry.tracing.enabled, true);
    assert.equal(config.telemetry.tracing.endpoint, 'http://tempo.observability:4318/v1/traces');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
