/**
 * A gateway on distributed state that cannot listen exits with status 1. It connected to Redis and
 * Postgres before binding; when the bind failed (EADDRINUSE) it printed the error but those
 * connections kept the process alive: a container that never exits is never restarted by Docker
 * (restart: unless-stopped reacts to an exit), so it sat there serving nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { dropTestState, reachablePostgres, redisUnreachable } from '../support/processes.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

test('a distributed gateway whose port is taken exits with status 1', async (t) => {
  const redisWhy = await redisUnreachable(REDIS_URL);
  const pgr = await reachablePostgres();
  const why = redisWhy ?? ('reason' in pgr ? pgr.reason : undefined);
  if (why || !('url' in pgr)) {
    if (process.env.CI === 'true') throw new Error(`CI=true but ${String(why)}`);
    t.skip(String(why));
    return;
  }
  const schema = `portico_startfail_${randomBytes(4).toString('hex')}`;
  const prefix = `portico-startfail-${randomBytes(4).toString('hex')}:`;
  const dir = await mkdtemp(join(tmpdir(), 'portico-startfail-'));
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const address = blocker.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  t.after(async () => {
    blocker.close();
    await rm(dir, { recursive: true, force: true });
    await dropTestState(pgr.url, [schema], REDIS_URL, [prefix]);
  });
  const file = join(dir, 'portico.yaml');
  await writeFile(
    file,
    stringify({
      server: { host: '127.0.0.1', port },
      logging: { level: 'warn' },
      admin: { token: 'start-fail-admin' },
      state: {
        kind: 'distributed',
        redis: { url: REDIS_URL, key_prefix: prefix },
        postgres: { url: pgr.url, schema },
        journal_dir: join(dir, 'journal'),
      },
      tenants: [{ id: 'acme', api_keys: [{ value: 'sk-start-fail' }] }],
      models: { default: { backends: [{ provider: 'sim' }] } },
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'start', '--config', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, 30_000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.match(err, /EADDRINUSE/);
  assert.equal(code, 1, `the gateway did not exit after failing to listen:\n${err}`);
});
