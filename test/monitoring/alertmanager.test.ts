// Alertmanager configuration, checked offline with amtool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
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

test('entrypoint.sh writes every secret file alertmanager.yml reads, from the environment, mode 0600', (t) => {
  const config = readFileSync(ALERTMANAGER_CONFIG, 'utf8');
  const wanted = [...config.matchAll(/_file: (\/etc\/alertmanager\/secrets\/[\w-]+)/g)].map((m) =>
    String(m[1]),
  );
  assert.equal(wanted.length, 3);
  const tmp = mkdtempSync(join(tmpdir(), 'portico-am-entrypoint-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const stub = join(tmp, 'alertmanager-stub.sh');
  writeFileSync(stub, '#!/bin/sh\necho "started $*"\n', { mode: 0o755 });
  const secrets = join(tmp, 'secrets');
  const r = spawnSync('sh', [join(dirname(ALERTMANAGER_CONFIG), 'entrypoint.sh'), '--log.level=debug'], {
    encoding: 'utf8',
    timeout: 10_000,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ALERTMANAGER_SECRETS_DIR: secrets,
      ALERTMANAGER_BIN: stub,
      PORTICO_ALERT_CHAT_WEBHOOK_URL: 'https://chat.example/hook/1',
      PORTICO_ALERT_FINANCE_WEBHOOK_URL: 'https://chat.example/hook/finance',
      PORTICO_ALERT_PAGERDUTY_ROUTING_KEY: 'pd-key-123',
    },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /started --config\.file=\/etc\/alertmanager\/alertmanager\.yml --storage\.path=\/alertmanager --log\.level=debug/,
  );
  assert.equal(r.stderr, '');
  const expected: Record<string, string> = {
    'chat-webhook-url': 'https://chat.example/hook/1',
    'finance-webhook-url': 'https://chat.example/hook/finance',
    'pagerduty-routing-key': 'pd-key-123',
  };
  for (const path of wanted) {
    const name = basename(path);
    const file = join(secrets, name);
    assert.equal(readFileSync(file, 'utf8'), expected[name], name);
    assert.equal(statSync(file).mode & 0o777, 0o600, `${name} mode`);
  }
  // Without the variables it warns for each missing secret and still starts.
  const bare = spawnSync('sh', [join(dirname(ALERTMANAGER_CONFIG), 'entrypoint.sh')], {
    encoding: 'utf8',
    timeout: 10_000,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ALERTMANAGER_SECRETS_DIR: join(tmp, 'empty'),
      ALERTMANAGER_BIN: stub,
    },
  });
  assert.equal(bare.status, 0);
  assert.equal(bare.stderr.match(/is not set/g)?.length, 3);
});
