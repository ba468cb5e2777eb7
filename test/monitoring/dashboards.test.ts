// Grafana dashboards: generated files up to date, structure sound, every PromQL expression valid
// (checked by promtool as recording rules, with Grafana variables replaced by concrete values).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { DASHBOARDS, renderAll } from '../../scripts/monitoring/dashboards.js';
import {
  DASHBOARDS_DIR,
  assertSucceeded,
  dashboardQueries,
  dashboardVariableQueries,
  loadDashboardJson,
  requireTool,
  run,
  substituteGrafanaVariables,
} from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'portico-dashboards-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const files = readdirSync(DASHBOARDS_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('committed dashboards match scripts/monitoring/dashboards.ts (run npm run monitoring:dashboards)', () => {
  const rendered = renderAll();
  assert.deepEqual(files, [...rendered.keys()].sort());
  for (const [name, text] of rendered) {
    assert.equal(readFileSync(join(DASHBOARDS_DIR, name), 'utf8'), text, `${name} is stale`);
  }
});

test('the seven dashboards exist with unique uids', () => {
  const uids = files.map((f) => loadDashboardJson(f).uid);
  assert.equal(new Set(uids).size, uids.length);
  assert.deepEqual([...uids].sort(), [
    'portico-backends',
    'portico-cache',
    'portico-cost',
    'portico-engine',
    'portico-overview',
    'portico-system',
    'portico-tenant',
  ]);
});

test('the tenant dashboard has a tenant variable from label_values(portico_requests_total, tenant)', () => {
  const vars = dashboardVariableQueries('tenant.json');
  assert.deepEqual(
    vars.find((v) => v.name === 'tenant'),
    { name: 'tenant', query: 'label_values(portico_requests_total, tenant)' },
  );
  // Every tenant-dashboard query is filtered by the variable.
  for (const q of dashboardQueries('tenant.json')) assert.match(q.expr, /tenant=~"\$tenant"/, q.panel);
});

test('every panel has a title, a description, queries and a place on the 24-column grid', () => {
  for (const spec of DASHBOARDS) {
    const doc = loadDashboardJson(spec.file);
    const panels = doc.panels as {
      type: string;
      title: string;
      description?: string;
      gridPos: { x: number; w: number };
      targets?: unknown[];
    }[];
    const real = panels.filter((p) => p.type !== 'row');
    assert.ok(real.length >= 6, `${spec.file}: only ${real.length} panels`);
    for (const p of real) {
      assert.ok(p.title && p.description, `${spec.file}: panel without title/description`);
      assert.ok((p.targets ?? []).length > 0, `${spec.file}/${p.title}: no queries`);
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${spec.file}/${p.title}: off the grid`);
    }
  }
});

test('every dashboard expression is valid PromQL (promtool check rules)', (t) => {
  if (!requireTool(t, 'promtool')) return;
  const rules: { record: string; expr: string }[] = [];
  for (const file of files) {
    dashboardQueries(file).forEach((q, i) => {
      rules.push({
        record: `dashboard:${file.replace(/\W/g, '_')}:${i}_${q.refId}`,
        expr: substituteGrafanaVariables(q.expr),
      });
    });
    for (const v of dashboardVariableQueries(file)) {
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.query);
      assert.ok(m?.[1], `${file}: variable ${v.name} is not label_values(selector, label)`);
      rules.push({
        record: `dashboard_var:${file.replace(/\W/g, '_')}:${v.name}`,
        expr: substituteGrafanaVariables(m[1]),
      });
    }
  }
  assert.ok(rules.length > 100, `only ${rules.length} expressions found`);
  const path = join(tmp, 'dashboard-queries.yml');
  writeFileSync(path, toYaml({ groups: [{ name: 'dashboards', rules }] }));
  const r = run('promtool', ['check', 'rules', path]);
  assertSucceeded(r, 'promtool check rules on dashboard expressions');
  assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('Grafana variable substitution covers every variable used', () => {
  for (const file of files) {
    for (const q of dashboardQueries(file))
      assert.doesNotMatch(substituteGrafanaVariables(q.expr), /\$/, q.panel);
  }
});
