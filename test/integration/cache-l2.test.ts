/**
 * The Redis tier (L2) shared by two gateway processes: one fills it, the other hits it without
 * calling the upstream. Needs Redis on 127.0.0.1:6379 (REDIS_URL); under CI=true it must run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { startTestSim, type TestSim } from '../support/gateway.js';
import {
  freePort,
  redisUnreachable,
  startGatewayProcess,
  stopGatewayProcess,
  type GatewayProcess,
} from '../support/processes.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const KEY = 'sk-l2-tenant-key';

async function ask(
  p: GatewayProcess,
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
  let a: GatewayProcess | undefined;
  let b: GatewayProcess | undefined;
  const prefix = `portico-cache-test-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    skipReason = await redisUnreachable(REDIS_URL);
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
    const l2Up = async (url: string): Promise<boolean> => {
      const m = await fetch(`${url}/metrics`);
      return m.ok && /portico_cache_l2_up 1/.test(await m.text());
    };
    [a, b] = await Promise.all([
      startGatewayProcess(file, await freePort(), l2Up),
      startGatewayProcess(file, await freePort(), l2Up),
    ]);
  });

  after(async () => {
    await Promise.all([stopGatewayProcess(a), stopGatewayProcess(b)]);
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
