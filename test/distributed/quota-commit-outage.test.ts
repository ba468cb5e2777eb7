/**
 * A distributed gateway loses Redis while a request runs: the answer is served, its quota commit
 * fails, and the usage must still be counted once Redis is back — not dropped (fail_open used to
 * swallow the commit; fail_closed confirmed it away). The link is cut by a TCP proxy in front of the
 * real Redis, so the tallies survive the outage as they would a network partition.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropTestState, reachablePostgres, redisUnreachable } from '../support/processes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY = 'sk-owed-commit-0123456789';

async function metric(gw: TestGateway, name: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

describe('distributed: a quota commit during a Redis outage', () => {
  let skip: string | undefined;
  let pgUrl: string | undefined;
  const schemas: string[] = [];
  const prefixes: string[] = [];
  const gateways: TestGateway[] = [];
  const proxies: TcpProxy[] = [];

  before(async () => {
    const pg = await reachablePostgres();
    skip = 'reason' in pg ? pg.reason : await redisUnreachable(REDIS_URL);
    if (skip) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${skip}`);
      console.warn(`SKIPPED quota commit outage tests: ${skip}`);
      return;
    }
    if (!('reason' in pg)) pgUrl = pg.url;
  });
  after(async () => {
    for (const g of gateways) await g.close();
    for (const p of proxies) await p.close();
    await dropTestState(pgUrl, schemas, REDIS_URL, prefixes);
  });

  for (const mode of ['fail_open', 'fail_closed'] as const) {
    it(`${mode}: the answer is served and its usage counted once Redis is back`, async (t) => {
      if (skip) return t.skip(skip);
      const target = new URL(REDIS_URL);
      const proxy = await startTcpProxy(Number(target.port || 6379), target.hostname);
      proxies.push(proxy);
      const schema = `portico_owed_${randomBytes(4).toString('hex')}`;
      const prefix = `portico-owed-${randomBytes(4).toString('hex')}:`;
      schemas.push(schema);
      prefixes.push(prefix);
      const gw = await startTestGateway(
        demoConfig({
          state: {
            kind: 'distributed',
            redis: { url: `redis://127.0.0.1:${proxy.port}`, key_prefix: prefix },
            postgres: { url: pgUrl, schema },
            redis_failure_mode: mode,
          },
          tenants: [{ id: 'owed', api_keys: [{ value: KEY }], quota: { daily_tokens: 1_000_000 } }],
          models: {
            default: {
              backends: [
                { id: 'slow', provider: 'sim', sim: { mode: 'lorem', output_tokens: 10, ttft_ms: 400 } },
              ],
            },
          },
        }),
      );
      gateways.push(gw);
      const tenancy = gw.gateway.tenancy;
      assert.ok(tenancy);
      const answer = fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hello' }] }),
      });
      // Admitted (the reservation is in Redis) and waiting for the backend: now Redis goes.
      for (let i = 0; i < 200 && tenancy.reservations.size === 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(tenancy.reservations.size, 1, 'the request holds a reservation');
      proxy.cut();
      const res = await answer;
      assert.equal(res.status, 200);
      const body = (await res.json()) as { usage: { total_tokens: number } };
      for (let i = 0; i < 200 && tenancy.quotaCommits.owed === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(tenancy.quotaCommits.owed, 1, 'the commit is owed while Redis is away');
      assert.equal(await metric(gw, 'portico_quota_commits_owed'), 1);

      proxy.restore();
      for (let i = 0; i < 1000 && tenancy.quotaCommits.owed > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(tenancy.quotaCommits.owed, 0, 'the commit landed once Redis was back');
      const day = await tenancy.state.quotas.usage('owed', 'tenant', 'day');
      assert.equal(day.usedTokens, body.usage.total_tokens);
      assert.equal(day.usedRequests, 1);
      assert.equal(day.reservedTokens, 0);
      assert.equal(await metric(gw, 'portico_quota_commits_owed'), 0);
      assert.equal(await metric(gw, 'portico_quota_commits_abandoned_total'), 0);
    });
  }
});
