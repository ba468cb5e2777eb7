/**
 * Run by `npm run bench` as its own process, after the load phases: the ledger journal's append
 * cost measured in a fresh process (as `npm run bench:journal` does), not in the load generator's
 * heap. Prints the rows as JSON on stdout. Args: rounds, block size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureJournal } from './journal-lib.js';

const rounds = Number(process.argv[2] ?? 20);
const block = Number(process.argv[3] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'portico-bench-journal-'));
try {
  process.stdout.write(JSON.stringify(measureJournal('OS temp dir', dir, rounds, block)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
