/**
 * `portico drill slow-startup|quota-rejection|upstream-timeout|backend-down|all` against a running
 * gateway with `portico sim` backends (see examples/drills/portico.yaml and docs/drills.md).
 * Exit code 0 when every drill passed, 1 otherwise.
 */
import { parseArgs } from 'node:util';
import { DRILLS, runDrill, type DrillName, type DrillTarget } from '../drills/drills.js';
import { UsageError, type CliIO } from './common.js';

const USAGE = `usage: portico drill ${DRILLS.join('|')}|all [--target URL] [--key KEY] [--quota-key KEY]
       [--admin-token T] [--sim-a URL] [--sim-b URL] [--json]`;

export async function runDrillCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      target: { type: 'string', default: 'http://127.0.0.1:8080' },
      key: { type: 'string', default: 'sk-drill-tenant' },
      'quota-key': { type: 'string', default: 'sk-drill-quota' },
      'admin-token': { type: 'string' },
      'sim-a': { type: 'string', default: 'http://127.0.0.1:9101' },
      'sim-b': { type: 'string', default: 'http://127.0.0.1:9102' },
      json: { type: 'boolean', default: false },
    },
  });
  const which = positionals[0];
  if (!which || (which !== 'all' && !(DRILLS as readonly string[]).includes(which)))
    throw new UsageError(USAGE);
  const adminToken = values['admin-token'] ?? io.env.PORTICO_ADMIN_TOKEN;
  if (!adminToken)
    throw new UsageError(
      'pass --admin-token or set PORTICO_ADMIN_TOKEN (backend-down reads /admin/backends)',
    );
  const target: DrillTarget = {
    gateway: values.target.replace(/\/+$/, ''),
    key: values.key,
    quotaKey: values['quota-key'],
    adminToken,
    simA: values['sim-a'].replace(/\/+$/, ''),
    simB: values['sim-b'].replace(/\/+$/, ''),
    models: { slow: 'drill-slow', timeout: 'drill-timeout', pool: 'drill-pool', quota: 'drill-quota' },
  };
  const names: DrillName[] = which === 'all' ? [...DRILLS] : [which as DrillName];
  let allPassed = true;
  for (const name of names) {
    const r = await runDrill(name, target);
    allPassed &&= r.passed;
    if (values.json) io.out(JSON.stringify(r));
    else {
      io.out(`${r.passed ? 'PASS' : 'FAIL'}  ${r.drill}  (${r.seconds} s)`);
      for (const s of r.steps) io.out(`      ${s}`);
    }
  }
  return allPassed ? 0 : 1;
}
