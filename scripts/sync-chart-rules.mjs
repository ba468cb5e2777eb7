#!/usr/bin/env node
// Copies the Prometheus rule files (YAML with a top-level `groups:`; promtool test files are left
// out) from deploy/monitoring/prometheus/rules into the Helm chart's files/rules, so the chart's
// PrometheusRule objects are built from the very files promtool tests.
// Usage: node scripts/sync-chart-rules.mjs [--check]   (--check: exit 1 on drift, change nothing)
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SOURCE = join(root, 'deploy/monitoring/prometheus/rules');
export const TARGET = join(root, 'deploy/helm/portico/files/rules');

const isRuleFile = (dir, name) => {
  if (!/\.ya?ml$/.test(name)) return false;
  try {
    const doc = parse(readFileSync(join(dir, name), 'utf8'));
    return doc !== null && typeof doc === 'object' && Array.isArray(doc.groups);
  } catch {
    return false;
  }
};

const check = process.argv.includes('--check');
if (!existsSync(SOURCE)) {
  console.log(`sync-chart-rules: ${SOURCE} does not exist; nothing to sync`);
  process.exit(0);
}
mkdirSync(TARGET, { recursive: true });
const wanted = readdirSync(SOURCE)
  .filter((n) => isRuleFile(SOURCE, n))
  .sort();
const present = readdirSync(TARGET)
  .filter((n) => /\.ya?ml$/.test(n))
  .sort();
const drift = [];
for (const n of wanted) {
  const same = present.includes(n) && readFileSync(join(SOURCE, n)).equals(readFileSync(join(TARGET, n)));
  if (!same) {
    drift.push(`changed or missing: ${n}`);
    if (!check) copyFileSync(join(SOURCE, n), join(TARGET, n));
  }
}
for (const n of present.filter((p) => !wanted.includes(p))) {
  drift.push(`stale: ${n}`);
  if (!check) unlinkSync(join(TARGET, n));
}
if (check && drift.length > 0) {
  console.error(
    `chart rule copies drifted:\n  ${drift.join('\n  ')}\nrun: node scripts/sync-chart-rules.mjs`,
  );
  process.exit(1);
}
console.log(
  `sync-chart-rules: ${wanted.length} rule file(s) ${check ? 'in sync' : 'synced'}${drift.length && !check ? ` (${drift.length} updated)` : ''}`,
);
