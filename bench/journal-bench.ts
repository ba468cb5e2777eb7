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
import { LedgerJournal, type JournalSegment } from '../src/state/ledger-journal.js';
import type { LedgerRecord, QuotaReservation } from '../src/state/ports.js';
import { root, round } from './lib.js';

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const BLOCK = Number(process.env.BLOCK ?? 2000);
const BUDGET_US = 5;

function record(i: number): LedgerRecord {
  const id = `req_${i.toString(36).padStart(12, '0')}abcdef`;
  return {
    id,
    time: Date.now(),
    tenant: 'acme-corp',
    key_id: 'key_3f9a2c1b0e7d',
    model: 'gpt-4o-mini',
    backend: 'sim-1',
    tokens_in: 412,
    tokens_out: 187,
    estimated: false,
    cost_usd: 0.000174,
    latency_ms: 812.345,
    status: 200,
    cache_hit: false,
    request_id: id,
  };
}

const reservation: QuotaReservation = {
  id: 'res_0a1b2c3d4e5f6a7b',
  tenant: 'acme-corp',
  scopes: ['tenant', 'key:key_3f9a2c1b0e7d'],
  windows: { day: '2026-12-06', month: '2026-12' },
  tokens: 1312,
  requests: 1,
  owner: 'replica-4f2a9c',
  expiresAt: Date.now() + 15_000,
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

interface Row {
  where: string;
  case: string;
  usPerRequest: number;
  p90: number;
  /** Confirmations, the batched settled line, rolling and deleting segments, per request. */
  offPathUs: number;
  /** CPU time (user + system) of the process per request: what the append costs the gateway, not counting time the OS gave other processes. */
  cpuUs: number;
  /** The quietest block's CPU time per request (least disturbed by other processes). */
  minCpuUs: number;
}

function measure(where: string, dir: string): Row[] {
  const rows: Row[] = [];
  const cases: Array<{ name: string; quota: boolean }> = [
    { name: 'record without quota (1 write)', quota: false },
    { name: 'record with quota (1 write; settled ids batched per tick)', quota: true },
  ];
  for (const c of cases) {
    const j = LedgerJournal.open(join(dir, c.quota ? 'q' : 'n'));
    const blocks: number[] = [];
    const offPath: number[] = [];
    const cpu: number[] = [];
    let i = 0;
    for (let round = 0; round < ROUNDS + 2; round++) {
      const segs: JournalSegment[] = [];
      // The request path builds the record anyway: only the journal's work is timed.
      const records = Array.from({ length: BLOCK }, () => record(i++));
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < BLOCK; k++) {
        const r = records[k] as LedgerRecord;
        const seg = j.append(c.quota ? { r, q: { res: reservation, tokens: 599 } } : { r });
        if (c.quota) j.settled(r.id, seg);
        segs.push(seg);
      }
      const t1 = process.hrtime.bigint();
      const c1 = process.cpuUsage(c0);
      // The ledger writer's confirmations and the tick (off the request path: timed apart).
      const t2 = process.hrtime.bigint();
      for (const s of segs) j.confirm(s);
      j.tick(Date.now() + 10_000);
      if (round >= 2) offPath.push(Number(process.hrtime.bigint() - t2) / 1000 / BLOCK);
      if (round >= 2) {
        // first two rounds warm up
        blocks.push(Number(t1 - t0) / 1000 / BLOCK);
        cpu.push((c1.user + c1.system) / BLOCK);
      }
    }
    j.close();
    const sorted = [...blocks].sort((a, b) => a - b);
    rows.push({
      where,
      case: c.name,
      usPerRequest: round(median(blocks), 3),
      p90: round(sorted[Math.floor(sorted.length * 0.9)] ?? 0, 3),
      offPathUs: round(median(offPath), 3),
      cpuUs: round(median(cpu), 3),
      minCpuUs: round(Math.min(...cpu), 3),
    });
  }
  return rows;
}

const dataBase = join(root, '.portico-data');
mkdirSync(dataBase, { recursive: true });
const dataDir = process.env.JOURNAL_DIR ?? mkdtempSync(join(dataBase, 'bench-journal-'));
const tmpDir = mkdtempSync(join(tmpdir(), 'portico-bench-journal-'));
// Labels without absolute paths: the report is committed.
const dataLabel = process.env.JOURNAL_DIR ? 'JOURNAL_DIR' : 'data dir (.portico-data/)';
const rows = [...measure(dataLabel, dataDir), ...measure('OS temp dir', tmpDir)];
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
