/**
 * Embedded mode (SQLite under data_dir): after a restart, API-created tenants and keys still work,
 * usage recorded so far is still in the ledger, and quotas continue from where they were.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startGateway, type RunningGateway } from '../../src/cli/start.js';

const ADMIN = 'restart-admin';

describe('embedded state survives a restart', () => {
  let dir: string;
  let file: string;
  let gw: RunningGateway | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-restart-'));
    file = join(dir, 'portico.yaml');
    await writeFile(
      file,
      stringify({
        server: { host: '127.0.0.1', port: 0 },
        logging: { level: 'silent' },
        admin: { token: ADMIN },
        state: { kind: 'embedded', data_dir: join(dir, 'data') },
        models: { default: { backends: [{ provider: 'sim', sim: { output_tokens: 5 } }] } },
      }),
    );
  });
  after(async () => {
    await gw?.stop(1_000);
    await rm(dir, { recursive: true, force: true });
  });

  const adminCall = async (url: string, method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return (await r.json()) as Record<string, unknown>;
  };
  const chat = (url: string, key: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('keys, tenants, usage and quotas survive', async () => {
    gw = await startGateway({ configFile: file, env: {}, defaultMetrics: false, watch: false });
    await adminCall(gw.url, 'POST', '/admin/tenants', {
      id: 'durable',
      system_prompt: 'Persist me.',
      quota: { daily_requests: 3 },
    });
    const { key } = (await adminCall(gw.url, 'POST', '/admin/tenants/durable/keys', {
      label: 'restart',
    })) as { key: string };
    assert.equal((await chat(gw.url, key)).status, 200);
    assert.equal((await chat(gw.url, key)).status, 200);
    await gw.stop(1_000);

    gw = await startGateway({ configFile: file, env: {}, defaultMetrics: false, watch: false });
    const info = (await (
      await fetch(`${gw.url}/info`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as { tenant: string; system_prompt: string };
    assert.deepEqual([info.tenant, info.system_prompt], ['durable', 'Persist me.']);
    const usage = (await adminCall(gw.url, 'GET', '/admin/usage?tenant=durable&group_by=day')) as {
      data: Array<{ requests: number }>;
    };
    assert.equal(usage.data[0]?.requests, 2, 'the ledger kept both requests');
    assert.equal((await chat(gw.url, key)).status, 200, 'third request of the daily quota');
    const spent = await chat(gw.url, key);
    assert.equal(spent.status, 429, 'the quota continued across the restart');
    assert.equal(((await spent.json()) as { error: { code: string } }).error.code, 'insufficient_quota');
  });

  it('a second gateway on the same data_dir is refused while the first runs, and starts once it stopped', async () => {
    await gw?.stop(1_000);
    gw = await startGateway({ configFile: file, env: {}, defaultMetrics: false, watch: false });
    await assert.rejects(
      startGateway({ configFile: file, env: {}, defaultMetrics: false, watch: false }),
      /data_dir .* is in use by another Portico gateway .*state\.kind: distributed/,
    );
    assert.equal((await fetch(`${gw.url}/health`)).status, 200, 'the first one is unaffected');
    await gw.stop(1_000);
    gw = await startGateway({ configFile: file, env: {}, defaultMetrics: false, watch: false });
    assert.equal((await fetch(`${gw.url}/health`)).status, 200);
  });
});
