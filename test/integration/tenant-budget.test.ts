/**
 * A tenant's daily budget (tenants[].budget.daily_usd, or `budget` on the admin API) is exported
 * as portico_tenant_daily_budget_usd, which the cost alerts (PorticoDailyBudgetExceeded,
 * PorticoDailyBudgetNearlyExhausted; deploy/monitoring/prometheus/rules/cost.yml) divide the
 * tenant's spend by. Before, the gauge was declared but never set: those alerts could not fire.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { series } from '../support/metrics.js';

const ADMIN = 'test-admin-token';
const GAUGE = 'portico_tenant_daily_budget_usd';

async function admin(gw: TestGateway, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

describe('tenant daily budget', () => {
  let gw: TestGateway;
  before(async () => {
    const base = demoConfig();
    const tenants = (base.tenants as Array<Record<string, unknown>>).map((t, i) =>
      i === 0 ? { ...t, budget: { daily_usd: 12.5 } } : t,
    );
    gw = await startTestGateway({ ...base, tenants });
  });
  after(() => gw.close());

  it('a config tenant with a budget has its series; tenants without one have none', async () => {
    const first = (demoConfig().tenants as Array<{ id: string }>)[0]?.id as string;
    assert.deepEqual(await series(gw, GAUGE), { [`tenant="${first}"`]: 12.5 });
    const view = (await (await admin(gw, 'GET', `/admin/tenants/${first}`)).json()) as { budget: unknown };
    assert.deepEqual(view.budget, { daily_usd: 12.5 });
  });

  it('the admin API sets, changes and clears a budget; the next scrape shows it', async () => {
    const created = await admin(gw, 'POST', '/admin/tenants', { id: 'spender', budget: { daily_usd: 3 } });
    assert.equal(created.status, 201, await created.text());
    assert.equal((await series(gw, GAUGE, 'spender'))['tenant="spender"'], 3);
    const patched = await admin(gw, 'PATCH', '/admin/tenants/spender', { budget: { daily_usd: 0.25 } });
    assert.equal(patched.status, 200, await patched.text());
    assert.equal((await series(gw, GAUGE, 'spender'))['tenant="spender"'], 0.25);
    const cleared = await admin(gw, 'PATCH', '/admin/tenants/spender', { budget: null });
    assert.equal(cleared.status, 200, await cleared.text());
    assert.deepEqual(await series(gw, GAUGE, 'spender'), {});
    const gone = await admin(gw, 'POST', '/admin/tenants', { id: 'spender2', budget: { daily_usd: 1 } });
    assert.equal(gone.status, 201);
    assert.equal((await admin(gw, 'DELETE', '/admin/tenants/spender2')).status < 300, true);
    assert.deepEqual(await series(gw, GAUGE, 'spender2'), {});
  });

  it('a scrape does not wait on a tenant store that hangs: it reports the budgets last read', async (t) => {
    const first = (demoConfig().tenants as Array<{ id: string }>)[0]?.id as string;
    assert.equal((await series(gw, GAUGE, first))[`tenant="${first}"`], 12.5);
    const tenants = gw.gateway.tenancy?.state.tenants;
    assert.ok(tenants);
    // The store stops answering (Postgres partitioned), and the list read is older than its 10 s.
    t.mock.method(tenants, 'list', () => new Promise<never>(() => undefined));
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 11_000 });
    const scraped = await Promise.race([
      series(gw, GAUGE, first),
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 2_000)),
    ]);
    assert.deepEqual(scraped, { [`tenant="${first}"`]: 12.5 });
  });

  it('a budget that is not a positive number of USD is refused, naming the field', async () => {
    for (const bad of [0, -1, 'ten', 1e12]) {
      const r = await admin(gw, 'POST', '/admin/tenants', { id: 'bad-budget', budget: { daily_usd: bad } });
      assert.equal(r.status, 400);
      const e = ((await r.json()) as { error: { param: string | null } }).error;
      assert.match(String(e.param), /budget/);
    }
  });
});
