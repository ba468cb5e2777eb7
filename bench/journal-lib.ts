/**
 * The ledger crash journal's hot-path measurement, shared by `npm run bench:journal` (its own
 * report) and `npm run bench` (one section of bench/report.md): one synchronous journal append per
 * request (JSON of the ledger record and its quota settle, one fs.writeSync), with the journal's
 * real rolling and deleting of segments (records confirmed as the ledger writer would).
 */
import { join } from 'node:path';
import { LedgerJournal, type JournalSegment } from '../src/state/ledger-journal.js';
import type { LedgerRecord, QuotaReservation } from '../src/state/ports.js';
import { round } from './lib.js';

/** Budget (issue 15): at most 5 µs of CPU per request. */
export const JOURNAL_BUDGET_US = 5;

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

export interface JournalRow {
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

/** Median over `rounds` blocks of `block` appends (after two warm-up blocks), per case. */
export function measureJournal(where: string, dir: string, rounds: number, block: number): JournalRow[] {
  const rows: JournalRow[] = [];
  const cases: Array<{ name: string; quota: boolean; perWrite: number }> = [
    { name: 'record without quota (1 write)', quota: false, perWrite: 1 },
    { name: 'record with quota (1 write; settled ids batched per tick)', quota: true, perWrite: 1 },
    // Answers and streams finished in one event-loop turn share one write (server.ts onSend, sse.ts).
    {
      name: 'record with quota, 4 records per write (answers and streams finished in one turn)',
      quota: true,
      perWrite: 4,
    },
  ];
  for (const [n, c] of cases.entries()) {
    const j = LedgerJournal.open(join(dir, `case-${n}`));
    const blocks: number[] = [];
    const offPath: number[] = [];
    const cpu: number[] = [];
    let i = 0;
    for (let round = 0; round < rounds + 2; round++) {
      const segs: JournalSegment[] = [];
      // The request path builds the record anyway: only the journal's work is timed.
      const records = Array.from({ length: block }, () => record(i++));
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < block; k++) {
        const r = records[k] as LedgerRecord;
        const seg = j.append(c.quota ? { r, q: { res: reservation, tokens: 599 } } : { r }, c.perWrite > 1);
        if (c.perWrite > 1 && (k + 1) % c.perWrite === 0) j.flushDeferred();
        if (c.quota) j.settled(r.id, seg);
        segs.push(seg);
      }
      const t1 = process.hrtime.bigint();
      const c1 = process.cpuUsage(c0);
      // The ledger writer's confirmations and the tick (off the request path: timed apart).
      const t2 = process.hrtime.bigint();
      for (const s of segs) j.confirm(s);
      j.tick(Date.now() + 10_000);
      if (round >= 2) offPath.push(Number(process.hrtime.bigint() - t2) / 1000 / block);
      if (round >= 2) {
        // first two rounds warm up
        blocks.push(Number(t1 - t0) / 1000 / block);
        cpu.push((c1.user + c1.system) / block);
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
