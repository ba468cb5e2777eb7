import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpenRequests } from './open-requests.js';

describe('OpenRequests', () => {
  it('idle() resolves true at once when none is open, and when the last one finishes', async () => {
    const open = new OpenRequests();
    assert.equal(await open.idle(10), true);
    open.add();
    open.add();
    const idle = open.idle(5_000);
    open.done();
    assert.equal(open.size, 1);
    setTimeout(() => open.done(), 20);
    assert.equal(await idle, true);
    assert.equal(open.size, 0);
  });

  it('idle() resolves false after its wait when some stay open', async () => {
    const open = new OpenRequests();
    open.add();
    const t0 = Date.now();
    assert.equal(await open.idle(50), false);
    assert.ok(Date.now() - t0 >= 45);
    open.done(); // a late finish wakes no stale waiter
    assert.equal(open.size, 0);
  });
});
