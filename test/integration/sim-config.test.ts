/** PATCH /sim/config merges into the running settings (RFC 7396): what a patch does not name is kept. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildSimServer } from '../../src/sim/server.js';
import type { SimOptions } from '../../src/config/schema.js';

describe('simulator: PATCH /sim/config', () => {
  it('a patch with only faults keeps the latency model; a nested patch keeps the other faults; null restores a default', async () => {
    const { app } = await buildSimServer({
      sim: {
        ttft_ms: 40,
        itl_ms: 7,
        output_tokens: 12,
        mode: 'echo',
        faults: { error_rate: 0.25, spike_ms: 900 },
      },
    });
    try {
      const patch = async (body: unknown): Promise<{ status: number; json: SimOptions }> => {
        const r = await app.inject({ method: 'PATCH', url: '/sim/config', payload: body as object });
        return { status: r.statusCode, json: r.json<SimOptions>() };
      };
      let r = await patch({ faults: { hang_rate: 0.5 } });
      assert.equal(r.status, 200);
      assert.equal(r.json.ttft_ms, 40);
      assert.equal(r.json.itl_ms, 7);
      assert.equal(r.json.output_tokens, 12);
      assert.equal(r.json.mode, 'echo');
      assert.equal(r.json.faults?.hang_rate, 0.5);
      assert.equal(r.json.faults?.error_rate, 0.25);
      assert.equal(r.json.faults?.spike_ms, 900);
      r = await patch({ faults: { spike_ms: null }, ttft_ms: 5 });
      assert.equal(r.json.faults?.spike_ms, 2000);
      assert.equal(r.json.ttft_ms, 5);
      assert.equal(r.json.faults?.hang_rate, 0.5);
      const got = await app.inject({ method: 'GET', url: '/sim/config' });
      assert.deepEqual(got.json(), r.json);
      // Invalid values and unknown keys are refused with their path; nothing changes.
      const bad = await app.inject({
        method: 'PATCH',
        url: '/sim/config',
        payload: { faults: { error_rate: 2 } },
      });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json<{ error: { param: string } }>().error.param, 'faults.error_rate');
      const unknown = await app.inject({ method: 'PATCH', url: '/sim/config', payload: { nope: 1 } });
      assert.equal(unknown.statusCode, 400);
      assert.deepEqual((await app.inject({ method: 'GET', url: '/sim/config' })).json(), r.json);
      const notObject = await app.inject({ method: 'PATCH', url: '/sim/config', payload: [1] });
      assert.equal(notObject.statusCode, 400);
    } finally {
      await app.close();
    }
  });
});

describe('simulator: clearing faults', () => {
  const NO_FAULTS = {
    error_rate: 0,
    error_status: 503,
    spike_rate: 0,
    spike_ms: 2000,
    hang_rate: 0,
    slow_headers_ms: 0,
    disconnect_rate: 0,
    disconnect_after_chunks: 3,
    malformed_rate: 0,
  };

  it('GET shows the effective faults even on a fresh simulator; PATCH {"faults": null} switches every fault off', async () => {
    const { app, sim } = buildSimServer();
    try {
      const get = async (): Promise<SimOptions> =>
        (await app.inject({ method: 'GET', url: '/sim/config' })).json<SimOptions>();
      // A fresh simulator has no faults configured: GET says so explicitly (all off), so a drill can
      // save this state and put it back.
      assert.deepEqual((await get()).faults, NO_FAULTS);
      const on = await app.inject({
        method: 'PATCH',
        url: '/sim/config',
        payload: { faults: { hang_rate: 1, retry_after_s: 4 }, ttft_ms: 3 },
      });
      assert.equal(on.statusCode, 200);
      assert.equal(on.json<SimOptions>().faults?.hang_rate, 1);
      // Merging an empty object changes nothing (RFC 7396)...
      await app.inject({ method: 'PATCH', url: '/sim/config', payload: { faults: {} } });
      assert.equal((await get()).faults?.hang_rate, 1);
      // ...null removes them: every fault off, retry_after_s gone, the latency model kept.
      const off = await app.inject({ method: 'PATCH', url: '/sim/config', payload: { faults: null } });
      assert.equal(off.statusCode, 200);
      assert.deepEqual(off.json<SimOptions>().faults, NO_FAULTS);
      assert.deepEqual((await get()).faults, NO_FAULTS);
      assert.equal((await get()).ttft_ms, 3);
      assert.equal(sim.options.faults?.hang_rate ?? 0, 0, 'the simulator itself runs without faults');
      // And it answers at once again.
      const r = await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: { model: 'sim', messages: [{ role: 'user', content: 'x' }] },
      });
      assert.equal(r.statusCode, 200);
    } finally {
      await app.close();
    }
  });
});
