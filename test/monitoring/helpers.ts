// Shared helpers for the monitoring tests: locating promtool/amtool, reading the metric catalogue,
// the rule files and the dashboards, and extracting metric references from PromQL with the
// official Lezer grammar (@prometheus-io/lezer-promql).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { parser } from '@prometheus-io/lezer-promql';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const MONITORING = join(ROOT, 'deploy/monitoring');
export const PROMETHEUS_DIR = join(MONITORING, 'prometheus');
export const RULES_DIR = join(PROMETHEUS_DIR, 'rules');
export const RULE_TESTS_DIR = join(PROMETHEUS_DIR, 'tests');
export const ALERTMANAGER_CONFIG = join(MONITORING, 'alertmanager/alertmanager.yml');
export const DASHBOARDS_DIR = join(MONITORING, 'grafana/dashboards');
export const RUNBOOK_URL_PREFIX = 'https://github.com/portico/portico/blob/main/docs/runbooks/';

// ---------------------------------------------------------------------------------------------
// External tools

const toolCache = new Map<string, boolean>();

export function hasTool(name: string): boolean {
  let ok = toolCache.get(name);
  if (ok === undefined) {
    const r = spawnSync(name, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    ok = r.error === undefined && r.status === 0;
    toolCache.set(name, ok);
  }
  return ok;
}

/**
 * True when the tool is installed. Otherwise skips the test loudly, or fails it under CI=true
 * (CI installs the tools with scripts/ci-install-monitoring.sh).
 */
export function requireTool(t: TestContext, name: 'promtool' | 'amtool' | 'prometheus'): boolean {
  if (hasTool(name)) return true;
  const reason = `${name} not found on PATH: install it with scripts/ci-install-monitoring.sh (Debian packages prometheus, prometheus-alertmanager)`;
  if (process.env.CI === 'true') assert.fail(reason);
  console.warn(`SKIPPED: ${reason}`);
  t.skip(reason);
  return false;
}

export function run(cmd: string, args: string[], cwd = ROOT): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
}

/** Asserts a zero exit status, showing the tool's output otherwise. */
export function assertSucceeded(r: SpawnSyncReturns<string>, what: string): void {
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${what} failed (exit ${String(r.status)}):\n${r.stdout}\n${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------
// Metric catalogue

export interface CatalogMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: string[];
  source: string;
  help: string;
}

export interface Catalog {
  metrics: CatalogMetric[];
  labelValues: Record<string, string[]>;
  targetLabels: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringArray(v: unknown, what: string): string[] {
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${what} must be an array of strings`);
  return v as string[];
}

export function loadCatalog(): Catalog {
  const raw: unknown = JSON.parse(readFileSync(join(MONITORING, 'metrics-catalog.json'), 'utf8'));
  assert.ok(isRecord(raw) && Array.isArray(raw.metrics), 'metrics-catalog.json: "metrics" array expected');
  const metrics = raw.metrics.map((m: unknown, i: number): CatalogMetric => {
    assert.ok(isRecord(m), `metrics[${i}] must be an object`);
    const { name, type, source, help } = m;
    assert.ok(
      typeof name === 'string' && /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name),
      `metrics[${i}].name invalid`,
    );
    assert.ok(type === 'counter' || type === 'gauge' || type === 'histogram', `${name}: bad type`);
    assert.ok(typeof source === 'string' && typeof help === 'string', `${name}: source and help required`);
    return { name, type, labels: stringArray(m.labels, `${name}.labels`), source, help };
  });
  assert.ok(isRecord(raw.labelValues), 'metrics-catalog.json: "labelValues" object expected');
  const labelValues: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(raw.labelValues)) labelValues[k] = stringArray(v, `labelValues.${k}`);
  return { metrics, labelValues, targetLabels: stringArray(raw.targetLabels, 'targetLabels') };
}

export interface ResolvedMetric {
  metric: CatalogMetric;
  /** '' or the histogram series suffix (_bucket, _sum, _count). */
  suffix: '' | '_bucket' | '_sum' | '_count';
}

export function resolveMetric(catalog: Catalog, name: string): ResolvedMetric | undefined {
  const exact = catalog.metrics.find((m) => m.name === name);
  if (exact) return { metric: exact, suffix: '' };
  for (const suffix of ['_bucket', '_sum', '_count'] as const) {
    if (!name.endsWith(suffix)) continue;
    const base = catalog.metrics.find((m) => m.name === name.slice(0, -suffix.length));
    if (base?.type === 'histogram') return { metric: base, suffix };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// PromQL

export interface SelectorRef {
  /** Metric name, or undefined for a selector without one. */
  name: string | undefined;
  matchers: { label: string; op: string; value: string }[];
}

/** Every vector selector in a PromQL expression, with its metric name and label matchers. */
export function selectorsOf(expr: string): SelectorRef[] {
  const tree = parser.parse(expr);
  const out: SelectorRef[] = [];
  const text = (from: number, to: number): string => expr.slice(from, to);
  const errors: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError)
        errors.push(`syntax error at ${node.from}: ${JSON.stringify(text(node.from, node.to))}`);
      if (node.name !== 'VectorSelector') return;
      const ref: SelectorRef = { name: undefined, matchers: [] };
      const id = node.node.getChild('Identifier');
      if (id) ref.name = text(id.from, id.to);
      const matchers = node.node.getChild('LabelMatchers');
      for (let m = matchers?.firstChild ?? null; m; m = m.nextSibling) {
        const label = m.getChild('LabelName');
        const op = m.getChild('MatchOp');
        const value = m.getChild('StringLiteral');
        if (!label || !op || !value) continue;
        const parsed: unknown = JSON.parse(text(value.from, value.to).replace(/^'(.*)'$/s, '"$1"'));
        const matcher = {
          label: text(label.from, label.to),
          op: text(op.from, op.to),
          value: String(parsed),
        };
        if (matcher.label === '__name__' && matcher.op === '=') ref.name = matcher.value;
        ref.matchers.push(matcher);
      }
      out.push(ref);
    },
  });
  assert.deepEqual(errors, [], `PromQL parse errors in ${expr}`);
  return out;
}

/**
 * Problems with the metric references of an expression: unknown metric names, histogram suffixes
 * on non-histograms, label names the metric does not carry, enumerated label values not in the
 * catalogue (equality matchers only).
 */
export function checkExpr(catalog: Catalog, expr: string): string[] {
  const problems: string[] = [];
  for (const sel of selectorsOf(expr)) {
    if (sel.name === undefined) {
      problems.push(`selector without a metric name in ${expr}`);
      continue;
    }
    const resolved = resolveMetric(catalog, sel.name);
    if (!resolved) {
      problems.push(`unknown metric ${sel.name}`);
      continue;
    }
    const allowed = new Set([...resolved.metric.labels, ...catalog.targetLabels, '__name__']);
    if (resolved.suffix === '_bucket') allowed.add('le');
    for (const m of sel.matchers) {
      if (!allowed.has(m.label)) problems.push(`${sel.name} has no label ${m.label}`);
      const values = catalog.labelValues[m.label];
      if (values && (m.op === '=' || m.op === '!=') && !values.includes(m.value)) {
        problems.push(
          `${sel.name}{${m.label}${m.op}"${m.value}"}: value not in catalogue (${values.join(', ')})`,
        );
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rules and rule tests

export interface AlertRule {
  file: string;
  group: string;
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

function stringRecord(v: unknown, what: string): Record<string, string> {
  if (v === undefined) return {};
  assert.ok(isRecord(v), `${what} must be a mapping`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    assert.equal(typeof x, 'string', `${what}.${k} must be a string`);
    out[k] = x as string;
  }
  return out;
}

export function loadAlertRules(): AlertRule[] {
  const out: AlertRule[] = [];
  for (const file of yamlFiles(RULES_DIR)) {
    const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
    assert.ok(isRecord(doc) && Array.isArray(doc.groups), `${file}: groups expected`);
    for (const g of doc.groups as unknown[]) {
      assert.ok(isRecord(g) && typeof g.name === 'string' && Array.isArray(g.rules), `${file}: bad group`);
      for (const r of g.rules as unknown[]) {
        assert.ok(isRecord(r) && typeof r.expr === 'string', `${file}: bad rule`);
        if (typeof r.alert !== 'string') continue;
        const rule: AlertRule = {
          file,
          group: g.name,
          alert: r.alert,
          expr: r.expr,
          labels: stringRecord(r.labels, `${r.alert}.labels`),
          annotations: stringRecord(r.annotations, `${r.alert}.annotations`),
        };
        if (typeof r.for === 'string') rule.for = r.for;
        out.push(rule);
      }
    }
  }
  return out;
}

export interface AlertTestCase {
  file: string;
  alertname: string;
  firing: boolean;
}

/** Every alert_rule_test of the promtool unit-test files, classified as firing or not. */
export function loadAlertTestCases(): { cases: AlertTestCase[]; ruleFilesByTest: Map<string, string[]> } {
  const cases: AlertTestCase[] = [];
  const ruleFilesByTest = new Map<string, string[]>();
  for (const file of yamlFiles(RULE_TESTS_DIR)) {
    const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
    assert.ok(isRecord(doc) && Array.isArray(doc.tests), `${file}: tests expected`);
    ruleFilesByTest.set(
      file,
      stringArray(doc.rule_files, `${file}: rule_files`).map((p) => resolve(dirname(file), p)),
    );
    for (const t of doc.tests as unknown[]) {
      assert.ok(isRecord(t), `${file}: bad test`);
      for (const a of (t.alert_rule_test ?? []) as unknown[]) {
        assert.ok(isRecord(a) && typeof a.alertname === 'string', `${file}: bad alert_rule_test`);
        const exp = a.exp_alerts;
        cases.push({ file, alertname: a.alertname, firing: Array.isArray(exp) && exp.length > 0 });
      }
    }
  }
  return { cases, ruleFilesByTest };
}

// ---------------------------------------------------------------------------------------------
// Dashboards

export interface DashboardQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

/** Concrete values for Grafana's built-in and the dashboards' template variables. */
export const GRAFANA_VARIABLES: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '1m',
  __range: '1d',
  __range_s: '86400',
  __range_ms: '86400000',
  tenant: 'acme',
  model: 'm1',
  backend: 'b1',
  instance: 'portico:8080',
};

/** Replaces $var, ${var}, ${var:format} and [[var]] with concrete values; throws on unknown ones. */
export function substituteGrafanaVariables(expr: string, overrides: Record<string, string> = {}): string {
  return expr.replace(
    /\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g,
    (whole, a?: string, b?: string, c?: string) => {
      const name = a ?? b ?? c ?? '';
      const value = overrides[name] ?? GRAFANA_VARIABLES[name];
      if (value === undefined) throw new Error(`unknown Grafana variable ${whole} in ${expr}`);
      return value;
    },
  );
}

export function loadDashboardJson(file: string): Record<string, unknown> {
  const doc: unknown = JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8'));
  assert.ok(isRecord(doc), `${file}: object expected`);
  return doc;
}

/** Every `expr` of every panel target (nested rows included), Grafana variables left in. */
export function dashboardQueries(file: string): DashboardQuery[] {
  const doc = loadDashboardJson(file);
  const out: DashboardQuery[] = [];
  const visit = (panels: unknown): void => {
    if (!Array.isArray(panels)) return;
    for (const panel of panels) {
      if (!isRecord(panel)) continue;
      visit(panel.panels);
      if (!Array.isArray(panel.targets)) continue;
      for (const target of panel.targets) {
        if (!isRecord(target) || typeof target.expr !== 'string') continue;
        out.push({
          dashboard: file,
          panel: String(panel.title),
          refId: String(target.refId),
          expr: target.expr,
        });
      }
    }
  };
  visit(doc.panels);
  return out;
}

/** The `label_values(...)` queries of a dashboard's template variables. */
export function dashboardVariableQueries(file: string): { name: string; query: string }[] {
  const doc = loadDashboardJson(file);
  const templating = doc.templating;
  if (!isRecord(templating) || !Array.isArray(templating.list)) return [];
  const out: { name: string; query: string }[] = [];
  for (const v of templating.list) {
    if (!isRecord(v) || v.type !== 'query') continue;
    const q = isRecord(v.query) ? v.query.query : v.query;
    if (typeof q === 'string') out.push({ name: String(v.name), query: q });
  }
  return out;
}
