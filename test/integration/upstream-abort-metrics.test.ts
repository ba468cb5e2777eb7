/**
 * A client that leaves mid-stream is not a backend failure: the upstream call is counted
 * `status="aborted"`, never `error`, and the backend keeps no last error (review, 2026-12-08: the
 * converted-stream path counted it `error`, so every closed browser tab looked like a backend
 * failure on the backends dashboard).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

describe('a client leaving mid-stream is counted aborted upstream', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(
      demoConfig({
        models: {
          default: {
            backends: [{ id: 'sim-slow', provider: 'sim', sim: { mode: 'echo', ttft_ms: 20, itl_ms: 50 } }],
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
  });

  it('status="aborted", no error series, no last error', async () => {
    const u = new URL(gw.url);
    await new Promise<void>((resolve) => {
      const r = request(
        {
          host: u.hostname,
          port: u.port,
          method: 'POST',
          path: '/v1/chat/completions',
          agent: false,
          headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.once('data', () =>
            setTimeout(() => {
              r.destroy();
              resolve();
            }, 100),
          );
        },
      );
      r.on('error', () => undefined);
      r.end(
        JSON.stringify({
          model: 'default',
          stream: true,
          messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten' }],
        }),
      );
    });
    // The gateway notices the disconnect and ends the upstream call.
    let lines: string[] = [];
    for (let i = 0; i < 50; i++) {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      lines = text.split('\n').filter((l) => l.startsWith('portico_upstream_requests_total{'));
      if (lines.some((l) => l.includes('backend="sim-slow"'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const mine = lines.filter((l) => l.includes('backend="sim-slow"'));
    assert.ok(
      mine.some((l) => l.includes('status="aborted"') && / 1$/.test(l)),
      mine.join('\n'),
    );
    assert.ok(!mine.some((l) => l.includes('status="error"')), mine.join('\n'));
    const backends = (await (
      await fetch(`${gw.url}/admin/backends`, { headers: { authorization: 'Bearer test-admin-token' } })
    ).json()) as { data: Array<{ backends: Array<{ id: string; last_error: string | null }> }> };
    const b = backends.data.flatMap((m) => m.backends).find((x) => x.id === 'sim-slow');
    assert.equal(b?.last_error ?? null, null);
  });
});
