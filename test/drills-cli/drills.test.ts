/**
 * `portico drill` against examples/drills/portico.yaml with two simulators over HTTP: every drill
 * passes, and prints what happened.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runDrillCommand } from '../../src/cli/drill.js';
import type { CliIO } from '../../src/cli/common.js';
import { startGateway, type RunningGateway } from '../../src/cli/start.js';
import { startTestSim, type TestSim } from '../support/gateway.js';

describe('portico drill', () => {
  let a: TestSim;
  let b: TestSim;
  let gw: RunningGateway;
  before(async () => {
    [a, b] = await Promise.all([startTestSim(), startTestSim()]);
    gw = await startGateway({
      configFile: 'examples/drills/portico.yaml',
      env: { PORTICO_PORT: '0', PORTICO_ADMIN_TOKEN: 'drill-admin', DRILL_SIM_A: a.url, DRILL_SIM_B: b.url },
      watch: false,
      defaultMetrics: false,
    });
  });
  after(async () => {
    await gw.stop(1_000);
    await a.close();
    await b.close();
  });

  for (const drill of ['slow-startup', 'quota-rejection', 'upstream-timeout', 'backend-down']) {
    it(`${drill} passes against the simulator`, async () => {
      const lines: string[] = [];
      const io: CliIO = { env: {}, out: (l) => lines.push(l), err: (l) => lines.push(l) };
      const code = await runDrillCommand(
        [drill, '--target', gw.url, '--admin-token', 'drill-admin', '--sim-a', a.url, '--sim-b', b.url],
        io,
      );
      assert.equal(code, 0, lines.join('\n'));
      assert.match(lines[0] ?? '', new RegExp(`^PASS  ${drill}`));
      assert.ok(lines.length >= 2, 'it says what happened');
    });
  }
});
