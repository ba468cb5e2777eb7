import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { MemoryQuotaStore } from '../state/memory/quotas.js';
import { createLogger } from '../telemetry/logger.js';
import { ReservationLeases } from './reservation-leases.js';

const scopes = [{ name: 'tenant', limits: { day: { tokens: 1000 } } }];

describe('ReservationLeases', () => {
  it('renews what this replica holds; what it stops holding lapses after one lease', async () => {
    let now = Date.UTC(2030, 0, 10, 12);
    const quotas = new MemoryQuotaStore({ clock: () => now });
    const leases = new ReservationLeases(quotas, createLogger('silent'), 15_000);
    try {
      assert.match(leases.owner, /^.+:\d+:[0-9a-f]{8}$/);
      const reserve = async (tokens: number) => {
        const r = await quotas.reserve({
          tenant: 't',
          scopes,
          tokens,
          owner: leases.owner,
          ttlMs: leases.leaseMs,
        });
        assert.ok(r.ok);
        assert.equal(r.reservation.owner, leases.owner);
        leases.add(r.reservation);
        return r.reservation;
      };
      const a = await reserve(100);
      const b = await reserve(200);
      assert.equal(leases.size, 2);
      // A minute of renewals every 5 s keeps both held.
      for (let i = 0; i < 12; i++) {
        now += 5_000;
        await leases.renewAll();
      }
      assert.equal((await quotas.usage('t', 'tenant', 'day')).reservedTokens, 300);
      // b settles; a is no longer renewed (as if its request hung on a replica that died).
      leases.delete(b);
      await quotas.commit(b, { tokens: 50 });
      leases.delete(a);
      now += 15_001;
      await leases.renewAll();
      const u = await quotas.usage('t', 'tenant', 'day');
      assert.deepEqual([u.usedTokens, u.reservedTokens], [50, 0]);
      assert.equal(leases.size, 0);
    } finally {
      leases.close();
    }
  });

  it('a hold that lapsed while its request ran is held again at the next renewal', async () => {
    // Found in review: renewAll ignored how many holds the store renewed. A hold whose lease lapsed
    // (the store unreachable, or this process stalled, for longer than the lease) went back to the
    // budget while its request still ran, and another request reserved it a second time.
    let now = Date.UTC(2030, 0, 10, 12);
    const quotas = new MemoryQuotaStore({ clock: () => now });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const lapsed: string[] = [];
    const leases = new ReservationLeases(quotas, logger, 15_000, { onLapsed: (t) => lapsed.push(t) });
    try {
      const reserve = (tokens: number) =>
        quotas.reserve({ tenant: 't', scopes, tokens, owner: leases.owner, ttlMs: leases.leaseMs });
      const running = await reserve(600);
      assert.ok(running.ok);
      leases.add(running.reservation);
      now += 20_000; // no renewal for longer than the lease
      const other = await reserve(600);
      assert.ok(other.ok, 'the lapse let another request reserve the same tokens');
      await leases.renewAll();
      const u = await quotas.usage('t', 'tenant', 'day');
      assert.equal(u.reservedTokens, 1200, 'held again, over the quota');
      assert.equal((await reserve(300)).ok, false, 'the quota holds again');
      assert.deepEqual(lapsed, ['t']);
      assert.equal(lines.length, 1);
      assert.deepEqual((JSON.parse(lines[0] ?? '{}') as { tenants: string[] }).tenants, ['t']);
      // Renewed as usual from then on; its commit settles it once.
      now += 5_000;
      await leases.renewAll();
      assert.deepEqual(lapsed, ['t']);
      assert.equal(lines.length, 1);
      leases.delete(running.reservation);
      await quotas.commit(running.reservation, { tokens: 500 });
      const after = await quotas.usage('t', 'tenant', 'day');
      assert.deepEqual([after.usedTokens, after.reservedTokens], [500, 600]);
    } finally {
      leases.close();
    }
  });

  it('a failing store is logged and does not throw', async () => {
    const quotas = new MemoryQuotaStore();
    const broken = Object.assign(Object.create(quotas) as MemoryQuotaStore, {
      renew: () => Promise.reject(new Error('store down')),
    });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const leases = new ReservationLeases(broken, logger, 15_000);
    try {
      const r = await quotas.reserve({ tenant: 't', scopes, tokens: 10 });
      assert.ok(r.ok);
      leases.add(r.reservation);
      await leases.renewAll();
      await leases.renewAll();
      assert.equal(lines.filter((l) => l.includes('renewing quota reservation leases failed')).length, 1);
    } finally {
      leases.close();
    }
  });
});
