/**
 * `portico drill` against examples/drills/portico.yaml with two simulators over HTTP: every drill
 * passes, and prints what happened.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runDrillCommand } from '../../src/cli/drill.js';
import type { CliIO } from '../../src/cli/common.js';
import { startGateway, type RunningGateway } from '../../src/cli/start.js';
import {
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';
import { freePort } from '../support/processes.js';

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

  it('only backend-down (and so `all`) needs the admin token', async () => {
    for (const drill of ['quota-rejection', 'upstream-timeout']) {
      const lines: string[] = [];
      const io: CliIO = { env: {}, out: (l) => lines.push(l), err: (l) => lines.push(l) };
      const code = await runDrillCommand([drill, '--target', gw.url, '--sim-a', a.url, '--sim-b', b.url], io);
      assert.equal(code, 0, lines.join('\n'));
      assert.match(lines[0] ?? '', new RegExp(`^PASS  ${drill}`));
    }
    for (const drill of ['backend-down', 'all']) {
      await assert.rejects(
        runDrillCommand([drill, '--target', gw.url, '--sim-a', a.url, '--sim-b', b.url], {
          env: {},
          out: () => undefined,
          err: () => undefined,
        }),
        /--admin-token or set PORTICO_ADMIN_TOKEN \(backend-down reads \/admin\/backends\)/,
      );
    }
  });
});

describe('portico drill puts the simulator back as it was', () => {
  // Each fault drill alone, against simulators of their own (as a user runs `portico drill NAME`
  // against fresh `portico sim` servers): it passes, and simulator A ends with exactly the faults it
  // had before, answering at once. Before, a fresh simulator kept the drill's fault (GET showed no
  // `faults`, and the drill's PATCH {"faults": {}} merged into the fault instead of removing it).
  const cases: Array<{ drill: string; faults?: { spike_ms: number; retry_after_s: number } }> = [
    { drill: 'slow-startup' },
    { drill: 'upstream-timeout' },
    { drill: 'upstream-timeout', faults: { spike_ms: 900, retry_after_s: 2 } },
    { drill: 'backend-down' },
  ];
  for (const { drill, faults } of cases) {
    it(`${drill} alone${faults ? ' (simulator A with faults of its own)' : ''}`, async () => {
      const [a, b] = await Promise.all([startTestSim(faults ? { sim: { faults } } : {}), startTestSim()]);
      const gw = await startGateway({
        configFile: 'examples/drills/portico.yaml',
        env: {
          PORTICO_PORT: '0',
          PORTICO_ADMIN_TOKEN: 'drill-admin',
          DRILL_SIM_A: a.url,
          DRILL_SIM_B: b.url,
        },
        watch: false,
        defaultMetrics: false,
      });
      try {
        const config = async (): Promise<unknown> => (await fetch(`${a.url}/sim/config`)).json();
        const before = await config();
        const lines: string[] = [];
        const io: CliIO = { env: {}, out: (l) => lines.push(l), err: (l) => lines.push(l) };
        const code = await runDrillCommand(
          [drill, '--target', gw.url, '--admin-token', 'drill-admin', '--sim-a', a.url, '--sim-b', b.url],
          io,
        );
        assert.equal(code, 0, lines.join('\n'));
        assert.deepEqual(await config(), before, 'simulator A has its previous settings back');
        const started = performance.now();
        const res = await fetch(`${a.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'x' }] }),
          signal: AbortSignal.timeout(5_000),
        });
        assert.equal(res.status, 200);
        assert.ok(performance.now() - started < 1_000, 'simulator A answers at once again');
      } finally {
        await gw.stop(1_000);
        await a.close();
        await b.close();
      }
    });
  }
});

describe('portico drill says what is wrong with the set-up, in one line', () => {
  let sim: TestSim;
  let demo: TestGateway;
  before(async () => {
    sim = await startTestSim();
    demo = await startTestGateway(demoConfig());
  });
  after(async () => {
    await demo.close();
    await sim.close();
  });

  const drill = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIO = { env: {}, out: (l) => out.push(l), err: (l) => err.push(l) };
    const code = await runDrillCommand([...args, '--admin-token', 'test-admin-token'], io);
    return { code, out, err };
  };

  it('a gateway running another config (401 on the drill keys): the hint to start the drill config', async () => {
    const r = await drill(['quota-rejection', '--target', demo.url, '--sim-a', sim.url]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.out, []);
    assert.equal(r.err.length, 1, r.err.join('\n'));
    assert.match(
      r.err[0] ?? '',
      new RegExp(
        `^portico drill: the gateway at ${demo.url} does not know the drill's keys \\(401 invalid_api_key .*start it with \`portico start --config examples/drills/portico.yaml\``,
      ),
    );
  });

  it('nothing listening: the URL and the hint', async () => {
    const port = await freePort(); // nothing listens there
    const r = await drill(['all', '--target', `http://127.0.0.1:${port}`, '--sim-a', sim.url]);
    assert.equal(r.code, 1);
    assert.match(
      r.err[0] ?? '',
      new RegExp(
        `^portico drill: cannot reach http://127\\.0\\.0\\.1:${port}/health: ECONNREFUSED: is the gateway running\\?`,
      ),
    );
  });
});
