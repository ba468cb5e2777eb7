import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema } from '../config/schema.js';
import { ProviderRegistry } from './registry.js';
import { chainView } from './view.js';
import type { Pool } from './pool.js';

/** Real pools (in-process simulators) for: a → [b, c], b and c one backend each, lone alone. */
function pools(): Map<string, Pool> {
  const sim = (id: string) => ({ id, provider: 'sim', sim: { mode: 'echo' } });
  const cfg = ConfigSchema.parse({
    models: {
      a: { backends: [sim('a1'), sim('a2')], fallbacks: ['b', 'c'] },
      b: { backends: [sim('b1')] },
      c: { backends: [sim('c1')] },
      lone: { backends: [sim('l1')] },
    },
  });
  return new ProviderRegistry().build(cfg).pools;
}

const backend = (p: Map<string, Pool>, alias: string, i = 0) => {
  const b = p.get(alias)?.backends[i];
  assert.ok(b);
  return b;
};

describe('chainView', () => {
  it('the alias serves while one of its backends is healthy and admitted; fallbacks without a pool are skipped', () => {
    const p = pools();
    backend(p, 'a', 0).healthy = false;
    assert.deepEqual(chainView(p, 'a', ['b', 'c', 'gone']), {
      chain: ['a', 'b', 'c'],
      fallbacks: ['b', 'c', 'gone'],
      serving: { model: 'a', backends: ['a2'], fallback: false, degraded: false },
    });
  });

  it('the first fallback with a healthy backend serves when every backend of the alias is out', () => {
    const p = pools();
    backend(p, 'a', 0).healthy = false; // ejected by health checks
    const a2 = backend(p, 'a', 1);
    for (let i = 0; i < 5; i++) a2.circuit.onFailure(1_000); // circuit open
    backend(p, 'b').healthy = false;
    const v = chainView(p, 'a', ['b', 'c'], 2_000);
    assert.deepEqual(v.serving, { model: 'c', backends: ['c1'], fallback: true, degraded: false });
  });

  it('only ejected backends left: the first of them that requests still try, marked degraded', () => {
    const p = pools();
    for (const [alias, i] of [
      ['a', 0],
      ['a', 1],
      ['b', 0],
      ['c', 0],
    ] as const)
      backend(p, alias, i).healthy = false;
    assert.deepEqual(chainView(p, 'a', ['b', 'c']).serving, {
      model: 'a',
      backends: ['a1', 'a2'],
      fallback: false,
      degraded: true,
    });
  });

  it('null when no backend of the chain admits a request; an open circuit admits again after open_ms', () => {
    const p = pools();
    const l1 = backend(p, 'lone');
    for (let i = 0; i < 5; i++) l1.circuit.onFailure(1_000);
    assert.equal(chainView(p, 'lone', [], 2_000).serving, null);
    assert.deepEqual(chainView(p, 'lone', [], 1_000 + l1.circuit.openMs).serving?.backends, ['l1']);
    assert.deepEqual(chainView(p, 'lone', []).chain, ['lone']);
    assert.deepEqual(chainView(p, 'split-alias', []), { chain: [], fallbacks: [], serving: null });
  });
});
