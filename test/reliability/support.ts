/**
 * Reliability drills (issue 15): each drill in test/reliability/*.test.ts measures one guarantee the
 * docs state and records its figures with recordDrill(). Under `npm test` the drills run in their
 * short form and write test-results/reliability/<name>.json (an ignored folder: a test never
 * rewrites a tracked file); `npm run drills:reliability` runs them in full (PORTICO_DRILLS=full)
 * and assembles bench/reliability-report.md from those files (scripts/reliability-report.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** True under `npm run drills:reliability`: the drills run at the sizes the issue names. */
export const FULL = process.env.PORTICO_DRILLS === 'full';

/** A drill's size: the short form under `npm test`, the full one under the drill command. */
export function drillSize(short: number, full: number): number {
  return FULL ? full : short;
}

export interface DrillFigure {
  /** What was measured, e.g. "completion tokens recorded". */
  label: string;
  value: number | string;
  unit?: string;
  /** The bound the guarantee sets, in words, e.g. "<= 3,000 + 40 (prompt-estimate tolerance)". */
  bound?: string;
  /** Whether the figure meets its bound (absent for figures that are context, not a check). */
  ok?: boolean;
}

export interface DrillResult {
  /** One line: the drill. */
  title: string;
  /** The guarantee it measures, as the docs state it. */
  guarantee: string;
  figures: DrillFigure[];
  notes?: string[];
}

export const RESULTS_DIR = join('test-results', 'reliability');

/** Write one drill's figures to test-results/reliability/<name>.json. */
export async function recordDrill(name: string, result: DrillResult): Promise<void> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const body = {
    name,
    mode: FULL ? 'full' : 'short',
    at: new Date().toISOString(),
    node: process.version,
    ...result,
  };
  await writeFile(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(body, null, 2)}\n`);
}
