// The metric catalogue (deploy/monitoring/metrics-catalog.json, docs/metrics.md) is the contract:
// alerts and dashboards may only use the metrics, labels and label values it lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DASHBOARDS_DIR,
  ROOT,
  checkExpr,
  dashboardQueries,
  dashboardVariableQueries,
  loadAlertRules,
  loadCatalog,
  selectorsOf,
  substituteGrafanaVariables,
} from './helpers.js';
import { DASHBOARDS } from '../../scripts/monitoring/dashboards.js';
import { GatewayMetrics } from '../../src/telemetry/metrics.js';
import { EngineStats } from '../../src/engine/stats.js';
import { Simulator } from '../../src/sim/simulator.js';
import { simMetrics } from '../../src/sim/metrics.js';

const catalog = loadCatalog();

test('catalogue names are unique and follow the naming rules', () => {
  const names = catalog.metrics.map((m) => m.name);
  assert.equal(new Set(names).size, names.length, 'duplicate names');
  for (const m of catalog.metrics) {
    if (m.source !== 'gateway' && m.source !== 'engine') continue;
    if (m.name.startsWith('http_')) continue; // seed-compatible names
    assert.match(m.name, /^portico_/, m.name);
    if (m.type === 'counter') assert.match(m.name, /_total$/, `${m.name}: counters end in _total`);
    for (const banned of ['key', 'api_key', 'user', 'request_id'])
      assert.ok(!m.labels.includes(banned), `${m.name}: unbounded label ${banned}`);
  }
});

test('the code emits exactly the gateway and engine metrics of the catalogue (names, types, labels)', async () => {
  // The gateway's registry with an in-process engine reporting into it, as in production.
  const metrics = new GatewayMetrics({ version: 'test', defaultMetrics: false });
  new EngineStats({ registry: metrics.registry, backend: 'engine-0' });
  const emitted = new Map<string, string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const labelNames = (metrics.registry.getSingleMetric(m.name) as unknown as { labelNames: string[] })
      .labelNames;
    emitted.set(m.name, `${String(m.type)} [${[...labelNames].sort().join(', ')}]`);
  }
  const catalogued = new Map(
    catalog.metrics
      .filter((m) => m.source === 'gateway' || m.source === 'engine')
      .map((m) => [m.name, `${m.type} [${[...m.labels].sort().join(', ')}]`]),
  );
  assert.deepEqual(Object.fromEntries([...emitted].sort()), Object.fromEntries([...catalogued].sort()));
});

test('`portico sim` emits exactly the simulator metrics of the catalogue (names, types, labels)', async () => {
  const registry = simMetrics(new Simulator('sim'), { modelName: 'sim' });
  const emitted = new Map<string, string>();
  for (const m of await registry.getMetricsAsJSON()) {
    const labelNames = (registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames;
    emitted.set(m.name, `${String(m.type)} [${[...labelNames].sort().join(', ')}]`);
  }
  const catalogued = new Map(
    catalog.metrics
      .filter((m) => m.source === 'sim')
      .map((m) => [m.name, `${m.type} [${[...m.labels].sort().join(', ')}]`]),
  );
  assert.deepEqual(Object.fromEntries([...emitted].sort()), Object.fromEntries([...catalogued].sort()));
});

test('docs/metrics.md lists exactly the gateway and engine metrics of the JSON catalogue', () => {
  const doc = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
  const inDoc = new Set([...doc.matchAll(/^\| `?([a-zA-Z_:][a-zA-Z0-9_:]*)`? \|/gm)].map((m) => m[1]));
  for (const m of catalog.metrics.filter(
    (x) => x.source === 'gateway' || x.source === 'engine' || x.source === 'sim',
  )) {
    assert.ok(inDoc.has(m.name), `${m.name} missing from docs/metrics.md`);
  }
  for (const name of inDoc) {
    if (name === 'metric') continue; // table header
    assert.ok(
      catalog.metrics.some((m) => m.name === name),
      `${name} in docs/metrics.md but not in metrics-catalog.json`,
    );
  }
});

test('every metric, label and label value used by the alert rules is in the catalogue', () => {
  const problems: string[] = [];
  for (const rule of loadAlertRules()) {
    for (const p of checkExpr(catalog, rule.expr)) problems.push(`${rule.alert}: ${p}`);
  }
  assert.deepEqual(problems, []);
});

test('every metric, label and label value used by the dashboards is in the catalogue', () => {
  const problems: string[] = [];
  const files = readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json'));
  for (const file of files) {
    for (const q of dashboardQueries(file)) {
      for (const p of checkExpr(catalog, substituteGrafanaVariables(q.expr)))
        problems.push(`${file}/${q.panel}: ${p}`);
    }
    for (const v of dashboardVariableQueries(file)) {
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.query);
      if (!m?.[1] || !m[2]) {
        problems.push(`${file}: variable ${v.name} query ${v.query}`);
        continue;
      }
      const selector = substituteGrafanaVariables(m[1]);
      for (const p of checkExpr(catalog, selector)) problems.push(`${file}: variable ${v.name}: ${p}`);
      const metric = catalog.metrics.find((x) => x.name === selectorsOf(selector)[0]?.name);
      if (metric && ![...metric.labels, ...catalog.targetLabels].includes(m[2])) {
        problems.push(`${file}: variable ${v.name}: ${metric.name} has no label ${m[2]}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('the checker itself catches unknown metrics, labels and values', () => {
  assert.deepEqual(checkExpr(catalog, 'rate(portico_requests_total{tenant="a"}[5m])'), []);
  assert.deepEqual(
    checkExpr(catalog, 'histogram_quantile(0.9, rate(portico_request_duration_seconds_bucket[5m]))'),
    [],
  );
  assert.deepEqual(checkExpr(catalog, 'rate(portico_requests_totl[5m])'), [
    'unknown metric portico_requests_totl',
  ]);
  assert.deepEqual(checkExpr(catalog, 'portico_requests_total_bucket'), [
    'unknown metric portico_requests_total_bucket',
  ]);
  assert.deepEqual(checkExpr(catalog, 'portico_backend_up{tenant="x"}'), [
    'portico_backend_up has no label tenant',
  ]);
  assert.deepEqual(checkExpr(catalog, 'portico_cache_lookups_total{result="hits"}'), [
    'portico_cache_lookups_total{result="hits"}: value not in catalogue (hit, miss)',
  ]);
  assert.deepEqual(checkExpr(catalog, '{__name__="vllm:num_requests_running"}'), []);
  assert.deepEqual(checkExpr(catalog, 'time() - process_start_time_seconds{job="portico"}'), []);
});

test('docs/observability.md describes every alert, dashboard and panel', () => {
  const doc = readFileSync(join(ROOT, 'docs/observability.md'), 'utf8');
  for (const rule of loadAlertRules())
    assert.ok(doc.includes(`| ${rule.alert} |`), `alert ${rule.alert} not in the table`);
  for (const spec of DASHBOARDS) {
    assert.ok(doc.includes(`### ${spec.title}`), `dashboard ${spec.title} not described`);
    for (const row of spec.rows) {
      for (const panel of row.panels)
        assert.ok(doc.includes(`- *${panel.title}*:`), `${spec.title}: panel ${panel.title}`);
    }
  }
});
