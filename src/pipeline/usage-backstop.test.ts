/**
 * The backstop behind the usage normaliser (review, 2026-12-08): a count that is no number never
 * reaches the ledger, a quota or a tokens/min window, whichever path let it through. A NaN settled
 * into a window refused the tenant every later request; in a quota it stopped enforcing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { admitWork, releaseHolds, tokenNeed, type AdmitDeps } from './admit.js';
import { createContext, type RequestContext } from './context.js';
import { recordUsage, type PipelineDeps } from './run.js';
import type { TenantRuntime } from './snapshot.js';
import { AdmissionQueue } from '../tenancy/priority-queue.js';
import type { Tenancy } from '../tenancy/tenancy.js';
import { MemoryCounterStore } from '../state/memory/counters.js';
import type { LedgerRecord, QuotaReservation } from '../state/index.js';
import { buildConfig } from '../config/load.js';
import { GatewayMetrics } from '../telemetry/metrics.js';
import { createLogger } from '../telemetry/logger.js';

async function contextFor(route: RequestContext['route']): Promise<RequestContext> {
  const { config } = await buildConfig({ tenants: [], models: {} });
  return createContext({
    requestId: 'r1',
    correlationId: 'r1',
    route,
    method: 'POST',
    endpoint: '/v1/rerank',
    clientIp: '127.0.0.1',
    snapshot: { config } as never,
  });
}

describe('usage backstop: no count that is no number reaches accounting', () => {
  it('a settle with NaN settles the estimate held: the tokens/min window stays a number', async () => {
    const counters = new MemoryCounterStore();
    const queue = new AdmissionQueue({ maxQueue: 10 });
    const deps = {
      tenancy: {
        state: { counters },
        queue,
        reservations: { owner: 'me', leaseMs: 1000 },
      } as unknown as Tenancy,
      metrics: new GatewayMetrics({ version: 'test', defaultMetrics: false }),
      logger: createLogger('silent'),
    } as AdmitDeps;
    const ctx = await contextFor('rerank');
    const tenant = {
      id: 't',
      limits: { tokens_per_minute: 100 },
      priority: 'normal',
    } as unknown as TenantRuntime;
    const cfg = ctx.snapshot.config.admission;
    await admitWork(deps, ctx, tenant, undefined, tokenNeed(10, 20, cfg), cfg, undefined);
    await releaseHolds(deps, ctx, NaN);
    const next = await counters.consumeWindow(
      { tenant: 't', name: 'tenant:tpm' },
      { limit: 100, windowMs: 60_000, cost: 1 },
    );
    assert.equal(next.allowed, true, 'the window refused the next request');
    assert.ok(Number.isFinite(next.used) && next.used <= 31, `window used: ${next.used}`);
    queue.close();
  });

  it('a usage with a NaN count is recorded (ledger, quota commit) as the estimate, marked estimated', async () => {
    const written: Array<{ rec: LedgerRecord; quota: { tokens: number } | undefined }> = [];
    const deps = {
      tenancy: {
        state: {
          ledgerWriter: {
            write: (rec: LedgerRecord, quota: { tokens: number } | undefined) => {
              written.push({ rec, quota });
              return true;
            },
          },
        },
      } as unknown as Tenancy,
      metrics: new GatewayMetrics({ version: 'test', defaultMetrics: false }),
      logger: createLogger('silent'),
      onFinish: [],
    } as PipelineDeps;
    const ctx = await contextFor('rerank');
    ctx.tenant = { id: 't' } as TenantRuntime;
    ctx.model = 'rr';
    ctx.backend = 'b';
    ctx.admission = { leases: [], charges: [], estimate: 30, reservation: { id: 'q1' } as QuotaReservation };
    ctx.usage = { prompt_tokens: NaN, completion_tokens: 0, total_tokens: NaN };
    ctx.promptTokensEstimate = 12;
    recordUsage(deps, ctx, 200);
    const w = written[0];
    assert.ok(w);
    assert.deepEqual([w.rec.tokens_in, w.rec.tokens_out, w.rec.estimated], [12, 0, true]);
    assert.equal(w.quota?.tokens, 12);
    assert.equal(ctx.accounting?.quotaActual, 12);
  });
});
