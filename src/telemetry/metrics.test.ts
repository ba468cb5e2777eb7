import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { GatewayMetrics, childCache } from './metrics.js';

describe('childCache', () => {
  it('returns one child per label tuple and counts into the same series', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 't_total', help: 't', labelNames: ['a', 'b'], registers: [registry] });
    const child = childCache(c);
    assert.equal(child('x', 'y'), child('x', 'y'));
    assert.notEqual(child('x', 'y'), child('x', 'z'));
    // "x\0y" must not collide with another split of the same characters.
    assert.notEqual(child('x', 'y'), child('xy', ''));
    child('x', 'y').inc();
    child('x', 'y').inc(2);
    c.labels('x', 'y').inc();
    const text = await registry.metrics();
    assert.match(text, /^t_total\{a="x",b="y"\} 4$/m);
  });

  it('stays bounded: a full cache starts over and keeps counting correctly', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'u_total', help: 'u', labelNames: ['k'], registers: [registry] });
    const child = childCache(c, 4);
    for (let i = 0; i < 10; i++) child(`k${i}`).inc();
    child('k0').inc();
    const text = await registry.metrics();
    assert.match(text, /^u_total\{k="k0"\} 2$/m);
    assert.match(text, /^u_total\{k="k9"\} 1$/m);
  });

  it('GatewayMetrics.recordRequest fills the request and http series', async () => {
    const m = new GatewayMetrics({ version: 'test', defaultMetrics: false });
    const r = {
      tenant: 't',
      model: 'm',
      route: 'chat',
      endpoint: '/v1/chat/completions',
      method: 'POST',
      seconds: 0.01,
    };
    m.recordRequest({ ...r, status: 200 });
    m.recordRequest({ ...r, status: 200 });
    m.recordRequest({ ...r, status: 429 });
    const text = await m.registry.metrics();
    assert.match(text, /^portico_requests_total\{tenant="t",model="m",route="chat",status="200"\} 2$/m);
    assert.match(text, /^portico_requests_total\{tenant="t",model="m",route="chat",status="429"\} 1$/m);
    assert.match(
      text,
      /^http_requests_total\{method="POST",endpoint="\/v1\/chat\/completions",tenant="t",status="200"\} 2$/m,
    );
  });
});
