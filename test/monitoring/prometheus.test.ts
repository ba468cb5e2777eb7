// Prometheus configuration, alert rules and their promtool unit tests, checked offline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import {
  PROMETHEUS_DIR,
  ROOT,
  RULES_DIR,
  RULE_TESTS_DIR,
  RUNBOOK_URL_PREFIX,
  assertSucceeded,
  loadAlertRules,
  loadAlertTestCases,
  requireTool,
  run,
  yamlFiles,
} from './helpers.js';

test('promtool check config accepts prometheus.yml and its rule files', (t) => {
  if (!requireTool(t, 'promtool')) return;
  const r = run('promtool', ['check', 'config', join(PROMETHEUS_DIR, 'prometheus.yml')]);
  assertSucceeded(r, 'promtool check config');
  assert.match(r.stdout, new RegExp(`SUCCESS: ${yamlFiles(RULES_DIR).length} rule files found`));
});

test('promtool check rules accepts every rule file', (t) => {
  if (!requireTool(t, 'promtool')) return;
  assertSucceeded(run('promtool', ['check', 'rules', ...yamlFiles(RULES_DIR)]), 'promtool check rules');
});

test('promtool test rules: every unit test passes', (t) => {
  if (!requireTool(t, 'promtool')) return;
  const files = yamlFiles(RULE_TESTS_DIR).map((f) => relative(PROMETHEUS_DIR, f));
  // Run from the prometheus directory so failures name the files as the tests do.
  assertSucceeded(run('promtool', ['test', 'rules', ...files], PROMETHEUS_DIR), 'promtool test rules');
});

test('every rule file is covered by a unit-test file', () => {
  const { ruleFilesByTest } = loadAlertTestCases();
  const covered = new Set([...ruleFilesByTest.values()].flat());
  for (const file of yamlFiles(RULES_DIR))
    assert.ok(covered.has(file), `${basename(file)} has no promtool test`);
});

test('every alert has at least one firing and one not-firing unit test', () => {
  const { cases } = loadAlertTestCases();
  const names = new Set(loadAlertRules().map((r) => r.alert));
  assert.ok(names.size >= 18, `expected the full alert set, found ${names.size}`);
  for (const name of names) {
    const mine = cases.filter((c) => c.alertname === name);
    assert.ok(
      mine.some((c) => c.firing),
      `${name}: no test where it fires`,
    );
    assert.ok(
      mine.some((c) => !c.firing),
      `${name}: no test where it stays silent`,
    );
  }
  for (const c of cases)
    assert.ok(names.has(c.alertname), `${basename(c.file)} tests unknown alert ${c.alertname}`);
});

test('every alert carries severity, team, category, summary, description and a runbook that exists', () => {
  for (const rule of loadAlertRules()) {
    const where = `${rule.alert} (${basename(rule.file)})`;
    assert.ok(['critical', 'warning', 'info'].includes(rule.labels.severity ?? ''), `${where}: severity`);
    assert.ok(rule.labels.team, `${where}: team label`);
    assert.ok(rule.labels.category, `${where}: category label`);
    assert.ok(rule.annotations.summary, `${where}: summary`);
    assert.ok(rule.annotations.description, `${where}: description`);
    const url = rule.annotations.runbook_url ?? '';
    assert.ok(
      url.startsWith(RUNBOOK_URL_PREFIX),
      `${where}: runbook_url must start with ${RUNBOOK_URL_PREFIX}`,
    );
    const doc = url.slice(RUNBOOK_URL_PREFIX.length).replace(/#.*$/, '');
    assert.match(doc, /^[a-z0-9-]+\.md$/, `${where}: runbook file name`);
    assert.ok(existsSync(join(ROOT, 'docs/runbooks', doc)), `${where}: docs/runbooks/${doc} does not exist`);
  }
});

test('cost alerts are labelled category=cost and only they are', () => {
  const rules = loadAlertRules();
  const costRules = rules.filter((r) => r.file.endsWith('cost.yml'));
  assert.ok(costRules.length >= 2);
  for (const r of costRules) assert.equal(r.labels.category, 'cost', r.alert);
  for (const r of rules.filter((x) => !x.file.endsWith('cost.yml')))
    assert.notEqual(r.labels.category, 'cost', r.alert);
});

test('the alert set covers the Observability issue', () => {
  const names = new Set(loadAlertRules().map((r) => r.alert));
  for (const name of [
    'PorticoDown',
    'PorticoHighErrorRate',
    'PorticoAllBackendsDown',
    'PorticoBackendUnhealthy',
    'PorticoHighLatency',
    'PorticoLowCacheHitRate',
    'PorticoCircuitBreakerOpen',
    'PorticoRedisDown',
    'PorticoHighMemory',
    'PorticoHighCPU',
    'PorticoTooManyConnections',
    'PorticoQueueBacklog',
    'PorticoRateLimitRejections',
    'PorticoDailyBudgetExceeded',
    'PorticoCostSpike',
    'PorticoGPUMemoryHigh',
  ]) {
    assert.ok(names.has(name), `missing alert ${name}`);
  }
  const errorRate = loadAlertRules().filter((r) => r.alert === 'PorticoHighErrorRate');
  assert.deepEqual(errorRate.map((r) => r.labels.severity).sort(), ['critical', 'warning']);
});
