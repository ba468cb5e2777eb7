/**
 * `portico drill slow-startup|quota-rejection|upstream-timeout|backend-down|all` against a running
 * gateway with `portico sim` backends (see examples/drills/portico.yaml and docs/drills.md).
 * Exit code 0 when every drill passed, 1 otherwise. Options are declared in program.ts.
 */
import { DRILLS, preflight, runDrill, type DrillName, type DrillTarget } from '../drills/drills.js';
import { gatewayUrl, UsageError, type CliIO } from './common.js';

export interface DrillOptions {
  target: string;
  key: string;
  quotaKey: string;
  adminToken?: string;
  simA: string;
  simB: string;
  json?: boolean;
}

export async function drill(which: string, o: DrillOptions, io: CliIO): Promise<number> {
  const names: DrillName[] = which === 'all' ? [...DRILLS] : [which as DrillName];
  // Only backend-down reads /admin/backends (so `all` needs the token too).
  const adminToken = o.adminToken ?? io.env.PORTICO_ADMIN_TOKEN ?? '';
  if (!adminToken && names.includes('backend-down'))
    throw new UsageError(
      'pass --admin-token or set PORTICO_ADMIN_TOKEN (backend-down reads /admin/backends)',
    );
  const target: DrillTarget = {
    gateway: gatewayUrl('--target', o.target),
    key: o.key,
    quotaKey: o.quotaKey,
    adminToken,
    simA: gatewayUrl('--sim-a', o.simA),
    simB: gatewayUrl('--sim-b', o.simB),
    models: { slow: 'drill-slow', timeout: 'drill-timeout', pool: 'drill-pool', quota: 'drill-quota' },
  };
  // One line instead of a screen of failures when the drill set-up is not there.
  const problem = await preflight(target, names);
  if (problem) {
    if (o.json) io.out(JSON.stringify({ drill: which, passed: false, steps: [problem], seconds: 0 }));
    else io.err(`portico drill: ${problem}`);
    return 1;
  }
  let allPassed = true;
  for (const name of names) {
    const r = await runDrill(name, target);
    allPassed &&= r.passed;
    if (o.json) io.out(JSON.stringify(r));
    else {
      io.out(`${r.passed ? 'PASS' : 'FAIL'}  ${r.drill}  (${r.seconds} s)`);
      for (const s of r.steps) io.out(`      ${s}`);
    }
  }
  return allPassed ? 0 : 1;
}

/** `portico drill ARGS...` in-process (tests). */
export async function runDrillCommand(argv: string[], io: CliIO): Promise<number> {
  const { runCli } = await import('./program.js');
  return runCli(['drill', ...argv], io);
}
