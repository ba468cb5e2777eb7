/**
 * What the response cache says about its Redis tier (L2), against a private redis-server on a free
 * port that the test stops and starts: a start-up that connects logs only "connected" (no
 * "unavailable" while the first attempt is under way); a Redis that cannot be reached is reported
 * once, after the first attempt failed, however often the client retries; a lost connection is
 * reported once, and the recovery is logged. `portico_cache_l2_up` follows. Needs the redis-server
 * binary (installed with Redis, see .ci/run): skipped without it, failed under CI=true.
 */
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ResponseCache } from '../../src/cache/response-cache.js';
import { CacheSchema } from '../../src/config/schema.js';
import { GatewayMetrics } from '../../src/telemetry/metrics.js';
import { freePort } from '../support/processes.js';

interface Line {
  level: number;
  msg: string;
  reason?: string;
  downForS?: number;
}

function skipOrFail(t: TestContext, reason: string): void {
  if (process.env.CI === 'true') assert.fail(`CI=true but ${reason}`);
  console.warn(`SKIPPED cache L2 reachability: ${reason}`);
  t.skip(reason);
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const p = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await new Promise<void>((resolve, reject) => {
    p.once('error', reject);
    p.once('spawn', () => resolve());
  });
  for (let i = 0; i < 200; i++) {
    if (await listening(port)) return p;
    await new Promise((r) => setTimeout(r, 25));
  }
  p.kill('SIGKILL');
  throw new Error('private redis-server did not start');
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

/** A response cache with L2 on `url`, its log lines (parsed) and its metrics. */
function cacheOn(url: string): { cache: ResponseCache; lines: Line[]; metrics: GatewayMetrics } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString('utf8').split('\n'))
        if (text.trim()) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  const metrics = new GatewayMetrics({ version: 'test', defaultMetrics: false });
  const cfg = CacheSchema.parse({ l2: { enabled: true, url, key_prefix: 'portico-l2-reach:' } });
  const cache = new ResponseCache(cfg, { metrics, logger: pino({ level: 'info' }, sink), redisUrl: url });
  return { cache, lines, metrics };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function l2Up(metrics: GatewayMetrics): Promise<number | undefined> {
  const m = await metrics.registry.getSingleMetric('portico_cache_l2_up')?.get();
  return m?.values[0]?.value;
}

const l2Lines = (lines: Line[]): string[] =>
  lines.filter((l) => l.msg.startsWith('cache L2')).map((l) => l.msg);

describe('cache L2 reachability log', () => {
  const children: ChildProcess[] = [];
  const caches: ResponseCache[] = [];
  after(async () => {
    for (const c of caches) await c.close();
    for (const p of children) await stop(p);
  });

  it('says "connected" at start-up, reports a lost connection once and logs the recovery', async (t) => {
    const which = spawnSync('redis-server', ['--version']);
    if (which.error) return skipOrFail(t, `redis-server not found: ${String(which.error)}`);
    const port = await freePort();
    const first = await startRedis(port);
    children.push(first);
    const { cache, lines, metrics } = cacheOn(`redis://127.0.0.1:${port}`);
    caches.push(cache);

    await until('connected', () => l2Lines(lines).length > 0);
    assert.deepEqual(l2Lines(lines), ['cache L2 (Redis) connected']);
    assert.equal(await l2Up(metrics), 1);

    // Redis goes away: one warning, however many reconnect attempts fail meanwhile.
    await stop(first);
    await until('the lost connection', () => l2Lines(lines).length > 1);
    const lost = lines.filter((l) => l.msg.startsWith('cache L2'))[1];
    assert.equal(lost?.msg, 'cache L2 (Redis) connection lost; serving from L1 and upstream, retrying');
    assert.equal(lost?.level, 40);
    assert.equal(await l2Up(metrics), 0);
    // Let the client retry a few times (its back-off starts at 100 ms): still one warning.
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(l2Lines(lines).length, 2, l2Lines(lines).join(' | '));

    // Redis is back: the recovery is logged, with how long it was out.
    children.push(await startRedis(port));
    await until('the recovery', () => l2Lines(lines).length > 2, 15_000);
    const back = lines.filter((l) => l.msg.startsWith('cache L2'))[2];
    assert.equal(back?.msg, 'cache L2 (Redis) reachable again; shared caching resumed');
    assert.equal(back?.level, 30);
    assert.ok(typeof back?.downForS === 'number' && back.downForS > 0, JSON.stringify(back));
    assert.equal(await l2Up(metrics), 1);
    assert.equal(l2Lines(lines).length, 3, l2Lines(lines).join(' | '));
  });

  it('reports a Redis it cannot reach once, after the first attempt failed, with the reason', async () => {
    const port = await freePort(); // nothing listens there
    const { cache, lines, metrics } = cacheOn(`redis://127.0.0.1:${port}`);
    caches.push(cache);
    assert.deepEqual(l2Lines(lines), [], 'nothing is logged before the first attempt completes');
    assert.equal(await l2Up(metrics), 0);
    await until('the failure', () => l2Lines(lines).length > 0);
    const down = lines.find((l) => l.msg.startsWith('cache L2'));
    assert.equal(
      down?.msg,
      'cache L2 (Redis) unavailable: could not connect; serving from L1 and upstream, retrying',
    );
    assert.equal(down?.level, 40);
    assert.match(down?.reason ?? '', /ECONNREFUSED/);
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(l2Lines(lines).length, 1, l2Lines(lines).join(' | '));
  });
});
