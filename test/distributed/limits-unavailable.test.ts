/**
 * A distributed gateway whose Redis is unreachable, in fail_closed mode: a request that needs the
 * shared limits is refused with 503 `limits_unavailable` (not `upstream_unavailable`: the backend is
 * fine) and a retry-after; in fail_open mode the same request is served.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropTestState, freePort, reachablePostgres } from '../support/processes.js';

describe('distributed: Redis unreachable', () => {
  let pgUrl: string | undefined;
  let skip: string | undefined;
  const gateways: TestGateway[] = [];
  const schemas: string[] = [];

  before(async () => {
    const pg = await reachablePostgres();
    if ('reason' in pg) {
      if (process.env.CI === 'true') throw new Error(`CI=true but ${pg.reason}`);
      skip = pg.reason;
      console.warn(`SKIPPED limits_unavailable tests: ${pg.reason}`);
      return;
    }
    pgUrl = pg.url;
  });
  after(async () => {
    for (const g of gateways) await g.close();
    await dropTestState(pgUrl, schemas);
  });

  async function gateway(mode: 'fail_open' | 'fail_closed'): Promise<TestGateway> {
    const schema = `portico_nolimits_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    const base = demoConfig();
    const gw = await startTestGateway({
      ...base,
      state: {
        kind: 'distributed',
        // Nothing listens there: every Redis command fails at once.
        redis: { url: `redis://127.0.0.1:${await freePort()}` },
        postgres: { url: pgUrl, schema },
        redis_failure_mode: mode,
      },
      tenants: (base['tenants'] as Array<Record<string, unknown>>).map((t) => ({
        ...t,
        limits: { requests_per_second: 100 },
      })),
    });
    gateways.push(gw);
    return gw;
  }

  const ask = (gw: TestGateway): Promise<Response> =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('fail_closed: 503 limits_unavailable with retry-after', async (t) => {
    if (skip) return t.skip(skip);
    const res = await ask(await gateway('fail_closed'));
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = (await res.json()) as { error: { code: string; message: string; type: string } };
    assert.equal(body.error.code, 'limits_unavailable');
    assert.equal(body.error.type, 'api_error');
    assert.match(body.error.message, /limit store/);
  });

  it('fail_open: the same request is served', async (t) => {
    if (skip) return t.skip(skip);
    const res = await ask(await gateway('fail_open'));
    assert.equal(res.status, 200);
    await res.text();
  });
});
