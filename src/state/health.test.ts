import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackendHealth } from './health.js';
import type { BackendName } from './ports.js';

function recorder(): { ups: boolean[]; hooks: { onBackendUp: (s: BackendName, up: boolean) => void } } {
  const ups: boolean[] = [];
  return { ups, hooks: { onBackendUp: (_s, up) => ups.push(up) } };
}

describe('BackendHealth', () => {
  it('follows real outcomes both ways and reports only changes', () => {
    const r = recorder();
    const h = new BackendHealth('postgres', { hooks: r.hooks });
    h.observe(true);
    h.observe(false);
    h.observe(false);
    h.observe(true);
    assert.deepEqual(r.ups, [true, false, true]);
    assert.equal(h.up, true);
    h.close();
  });

  it('a store of several connections is up only while every one is, whichever reported last', () => {
    const r = recorder();
    const h = new BackendHealth('redis', {
      hooks: r.hooks,
      sources: ['commands', 'pubsub'],
      initiallyUp: false,
    });
    h.set('commands', true);
    assert.equal(h.up, false, 'pub/sub not connected yet');
    h.set('pubsub', true);
    assert.equal(h.up, true);
    h.set('pubsub', false);
    h.set('commands', true); // the other connection reporting last does not hide the dead one
    assert.equal(h.up, false);
    h.set('pubsub', true);
    assert.deepEqual(r.ups, [false, true, false, true]);
    h.close();
  });

  it('a probe that fails, hangs past its timeout or gives no verdict', async () => {
    let answer: 'ok' | 'fail' | 'hang' | 'none' = 'fail';
    const h = new BackendHealth('postgres', {
      intervalMs: 0,
      timeoutMs: 50,
      probe: () =>
        answer === 'hang'
          ? new Promise<boolean>(() => undefined)
          : answer === 'none'
            ? Promise.resolve(undefined)
            : answer === 'ok'
              ? Promise.resolve(true)
              : Promise.reject(new Error('ECONNREFUSED')),
    });
    assert.equal(await h.check(), false);
    answer = 'ok';
    assert.equal(await h.check(), true);
    answer = 'hang';
    const t0 = Date.now();
    assert.equal(await h.check(), false);
    assert.ok(Date.now() - t0 < 1000);
    answer = 'none';
    assert.equal(await h.check(), false, 'no verdict keeps the last state');
    h.close();
  });

  it('the timer probes by itself (an outage with no traffic is seen)', async () => {
    let ok = true;
    const h = new BackendHealth('postgres', { intervalMs: 20, probe: () => Promise.resolve(ok) });
    ok = false;
    for (let i = 0; i < 100 && h.up; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.up, false);
    ok = true;
    for (let i = 0; i < 100 && !h.up; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.up, true);
    h.close();
  });
});
