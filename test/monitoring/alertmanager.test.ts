// Alertmanager configuration, checked offline with amtool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ALERTMANAGER_CONFIG, assertSucceeded, requireTool, run } from './helpers.js';

test('amtool check-config accepts alertmanager.yml and its templates', (t) => {
  if (!requireTool(t, 'amtool')) return;
  const r = run('amtool', ['check-config', ALERTMANAGER_CONFIG]);
  assertSucceeded(r, 'amtool check-config');
  assert.match(r.stdout, /SUCCESS/);
  assert.match(r.stdout, /1 templates/);
});

test('every notification template the config references renders (amtool template render)', (t) => {
  if (!requireTool(t, 'amtool')) return;
  const names = new Set(
    [...readFileSync(ALERTMANAGER_CONFIG, 'utf8').matchAll(/\{\{ template "([\w.]+)" \. \}\}/g)].map(
      (m) => m[1],
    ),
  );
  assert.ok(names.size >= 2, 'expected the portico.title and portico.text templates');
  for (const name of names) {
    const r = run('amtool', [
      'template',
      'render',
      `--template.glob=${join(dirname(ALERTMANAGER_CONFIG), 'templates/*.tmpl')}`,
      `--template.text={{ template "${String(name)}" . }}`,
    ]);
    assertSucceeded(r, `amtool template render ${String(name)}`);
  }
});

const routing: { labels: string[]; receivers: string }[] = [
  {
    labels: ['alertname=PorticoDown', 'severity=critical', 'category=availability'],
    receivers: 'pager,chat',
  },
  {
    labels: ['alertname=PorticoHighErrorRate', 'severity=warning', 'category=availability'],
    receivers: 'chat',
  },
  { labels: ['alertname=PorticoQuotaExhausted', 'severity=info', 'category=capacity'], receivers: 'chat' },
  {
    labels: ['alertname=PorticoDailyBudgetExceeded', 'severity=warning', 'category=cost'],
    receivers: 'finance',
  },
  { labels: ['alertname=PorticoCostSpike', 'severity=info', 'category=cost'], receivers: 'finance' },
];

for (const { labels, receivers } of routing) {
  test(`routes ${labels.join(' ')} to ${receivers}`, (t) => {
    if (!requireTool(t, 'amtool')) return;
    const r = run('amtool', [
      'config',
      'routes',
      'test',
      `--config.file=${ALERTMANAGER_CONFIG}`,
      `--verify.receivers=${receivers}`,
      ...labels,
    ]);
    assertSucceeded(r, `amtool config routes test ${labels.join(' ')}`);
  });
}

test('critical inhibits warning of the same alertname and instance; secrets come from files', () => {
  const text = readFileSync(ALERTMANAGER_CONFIG, 'utf8');
  const doc = parseYaml(text) as {
    inhibit_rules?: { source_matchers?: string[]; target_matchers?: string[]; equal?: string[] }[];
  };
  const rule = doc.inhibit_rules?.find(
    (r) =>
      r.source_matchers?.includes('severity="critical"') && r.target_matchers?.includes('severity="warning"'),
  );
  assert.ok(rule, 'inhibit rule critical -> warning');
  assert.deepEqual(rule.equal, ['alertname', 'instance']);
  // No inline URLs or keys: every secret is a *_file reference.
  assert.doesNotMatch(text, /^\s*(api_url|url|routing_key|service_key):/m);
  assert.match(text, /api_url_file:/);
  assert.match(text, /routing_key_file:/);
});
