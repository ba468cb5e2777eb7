/**
 * `npm run bench:journal`: what the usage-ledger crash journal adds to each request's hot path.
 *
 * Per request the gateway makes one synchronous journal append (JSON.stringify of the ledger
 * record and its quota settle, one fs.writeSync) before the response's last byte; a request with
 * a quota reservation also notes its confirmed quota commit in memory (written as one line per
 * batch on the journal's tick, off the request path). This measures both, in one process, on a directory under the data dir's file system (JOURNAL_DIR, default a
 * fresh directory under .portico-data/ in the repo, which is where `state.data_dir` lives by
 * default) and under the OS temp dir, with the journal's real rolling and deleting of segments
 * (records confirmed as the ledger writer would). Figures: median over ROUNDS blocks of BLOCK
 * requests, in microseconds per request. Writes bench/journal-report.json and .md.
 * Budget (issue 15): at most 5 µs per request.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOURNAL_BUDGET_US as BUDGET_US, measureJournal } from './journal-lib.js';
import { root, round } from './lib.js';

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const BLOCK = Number(process.env.BLOCK ?? 2000);

const dataBase = join(root, '.portico-data');
mkdirSync(dataBase, { recursive: true });
const dataDir = process.env.JOURNAL_DIR ?? mkdtempSync(join(dataBase, 'bench-journal-'));
const tmpDir = mkdtempSync(join(tmpdir(), 'portico-bench-journal-'));
// Labels without absolute paths: the report is committed.
const dataLabel = process.env.JOURNAL_DIR ? 'JOURNAL_DIR' : 'data dir (.portico-data/)';
const rows = [
  ...measureJournal(dataLabel, dataDir, ROUNDS, BLOCK),
  ...measureJournal('OS temp dir', tmpDir, ROUNDS, BLOCK),
];
if (!process.env.JOURNAL_DIR) rmSync(dataDir, { recursive: true, force: true });
rmSync(tmpDir, { recursive: true, force: true });

const worst = Math.max(...rows.map((r) => r.cpuUs));
const worstWall = Math.max(...rows.map((r) => r.usPerRequest));
const report = {
  when: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  loadAverage: loadavg().map((x) => round(x, 2)),
  rounds: ROUNDS,
  block: BLOCK,
  budgetUs: BUDGET_US,
  withinBudget: worst <= BUDGET_US,
  rows,
};
const md = [
  '# Ledger journal hot-path cost',
  '',
  `\`npm run bench:journal\` (${report.when}, Node ${report.node}, ${report.cpu}, ${cpus().length} cores, load average ${report.loadAverage.join(' / ')}; median of ${ROUNDS} blocks of ${BLOCK} requests).`,
  `Budget: ≤ ${BUDGET_US} µs per request — ${report.withinBudget ? 'met' : 'NOT met'} in CPU time (worst median ${worst} µs CPU; worst median wall time ${worstWall} µs, which on a shared machine includes time the OS gave other processes).`,
  '',
  '| where | per request | hot path CPU µs (median) | CPU µs (quietest block) | hot path wall µs (median) | wall µs (p90 of blocks) | off the request path µs |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.where} | ${r.case} | ${r.cpuUs} | ${r.minCpuUs} | ${r.usPerRequest} | ${r.p90} | ${r.offPathUs} |`,
  ),
  '',
];
writeFileSync(join(root, 'bench/journal-report.json'), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(root, 'bench/journal-report.md'), md.join('\n'));
console.log(md.join('\n'));
