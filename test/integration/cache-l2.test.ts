/**
 * The Redis tier (L2) shared by two gateway processes: one fills it, the other hits it without
 * calling the upstream. Needs Redis on 127.0.0.1:6379 (REDIS_URL); under CI=true it must run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { startTestSim, type TestSim } from '../support/gateway.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const KEY = 'sk-l2-tenant-key';

async function redisReason(): Promise<string | undefined> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await r.connect();
    await r.ping();
    return undefined;
  } catch (e) {
    return `redis unreachable at ${REDIS_URL}: ${String(e)}`;
  } finally {
    r.disconnect();
  }
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

interface Proc {
  child: ChildProcess;
  url: string;
}

async function startProc(configFile: string): Promise<Proc> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', 'start', '--config', configFile, '--port', String(port)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`gateway exited: ${err}`);
    try {
      const m = await fetch(`${url}/metrics`);
      if (m.ok && /portico_cache_l2_up 1/.test(await m.text())) return { child, url };
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`gateway did not start with its Redis cache tier up: ${err}`);
}

async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

async function ask(
  p: Proc,
  stream = false,
): Promise<{ cache: string | null; tier: string | null; text: string }> {
  const res = await fetch(`${p.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'default',
      temperature: 0,
      max_tokens: 10,
      stream,
      messages: [{ role: 'user', content: 'shared between replicas' }],
    }),
  });
  assert.equal(res.status, 200);
  return {
    cache: res.headers.get('x-portico-cache'),
    tier: res.headers.get('x-portico-cache-tier'),
    text: await res.text(),
  };
}

describe('cache L2: shared by two gateway processes through Redis', () => {
  let skipReason: string | undefined;
  let dir = '';
  let sim: TestSim | undefined;
  let a: Proc | undefined;
  let b: Proc | undefined;
  const prefix = `portico-cache-test-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    skipReason = await redisReason();
    if (skipReason) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${skipReason}`);
      console.warn(`SKIPPED cache L2 tests: ${skipReason}`);
      return;
    }
    sim = await startTestSim({ sim: { mode: 'lorem', output_tokens: 8 }, recordRequests: 100 });
    dir = await mkdtemp(join(tmpdir(), 'portico-l2-'));
    const file = join(dir, 'portico.yaml');
    await writeFile(
      file,
      stringify({
        logging: { level: 'warn' },
        admin: { token: 'l2-admin' },
        state: { kind: 'memory' },
        cache: { l2: { enabled: true, url: REDIS_URL, key_prefix: prefix, ttl_seconds: 60 } },
        tenants: [{ id: 'shared', allowed_models: ['default'], api_keys: [{ value: KEY }] }],
        models: { default: { backends: [{ provider: 'openai', base_url: sim.baseURL, model: 'sim' }] } },
      }),
    );
    [a, b] = await Promise.all([startProc(file), startProc(file)]);
  });

  after(async () => {
    await Promise.all([stopProc(a), stopProc(b)]);
    await sim?.close();
    if (!skipReason) {
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('one process fills the Redis tier, the other hits it without an upstream call', async (t) => {
    if (skipReason || !a || !b || !sim) return t.skip(skipReason);
    const upstream = (): number => sim!.received.filter((r) => r.path.startsWith('/v1/chat')).length;
    const first = await ask(a);
    assert.equal(first.cache, 'miss');
    // The store is written in the background; give it a moment to land in Redis.
    const r = new Redis(REDIS_URL);
    const until = Date.now() + 5_000;
    while ((await r.keys(`${prefix}shared:*`)).length === 0 && Date.now() < until)
      await new Promise((res) => setTimeout(res, 20));
    r.disconnect();
    const second = await ask(b);
    assert.equal(second.cache, 'hit');
    assert.equal(second.tier, 'l2');
    assert.equal(second.text, first.text);
    const third = await ask(b);
    assert.equal(third.tier, 'l1', 'an L2 hit is copied into L1');
    assert.equal(upstream(), 1);
  });

  it('streamed entries are shared too', async (t) => {
    if (skipReason || !a || !b) return t.skip(skipReason);
    const first = await ask(a, true);
    assert.equal(first.cache, 'miss');
    const r = new Redis(REDIS_URL);
    const until = Date.now() + 5_000;
    while ((await r.keys(`${prefix}shared:*`)).length < 2 && Date.now() < until)
      await new Promise((res) => setTimeout(res, 20));
    r.disconnect();
    const second = await ask(b, true);
    assert.equal(second.tier, 'l2');
    assert.equal(second.text, first.text);
  });
});
