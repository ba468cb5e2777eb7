#!/usr/bin/env node
// `npm run drills:reliability`: the reliability drills (test/reliability) at full size, then
// bench/reliability-report.md from their figures. Extra arguments filter drill files by substring.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

rmSync('test-results/reliability', { recursive: true, force: true });
const env = { ...process.env, PORTICO_DRILLS: 'full', PORTICO_TEST_CONCURRENCY: '1' };
const filters = process.argv.slice(2).map((f) => `test/reliability/${f}`);
const run = spawnSync(
  process.execPath,
  ['scripts/run-tests.mjs', ...(filters.length ? filters : ['test/reliability/'])],
  {
    stdio: 'inherit',
    env,
  },
);
const report = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/reliability-report.ts'], {
  stdio: 'inherit',
  env,
});
process.exit(run.status || report.status || 0);
