/**
 * A config tenant whose id is a tenant created through the admin API (review, 2026-12): a reload
 * took the API tenant over silently (source config, its quota and prompt gone), and a later reload
 * without the entry deleted it together with its admin-created keys (401). Now such a config is
 * refused — on reload (the old config stays, `portico_config_reloads_total{result="rejected"}`, the
 * problem names `tenants[i].id`) and at start-up — and the API tenant and its keys are untouched.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfigFile } from '../../src/config/load.js';
import { startGateway } from '../../src/cli/start.js';
import { demoConfig, startGatewayFromFile } from '../support/gateway.js';

const ADMIN = 'test-admin-token';
interface Body {
  key?: string;
  source?: string;
  quota?: unknown;
  system_prompt?: string;
  error?: { message: string };
}
async function req(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  token = ADMIN,
): Promise<{ status: number; body: Body }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Body) : {} };
}
const chat = (url: string, key: string): Promise<{ status: number }> =>
  req(
    url,
    'POST',
    '/v1/chat/completions',
    { model: 'default', messages: [{ role: 'user', content: 'hi' }] },
    key,
  );

describe('a config tenant with the id of an API tenant', () => {
  let gw: Awaited<ReturnType<typeof startGatewayFromFile>>;
  let cfg: Record<string, unknown>;
  let dataDir: string;
  let key: string;
  const withGlobex = (): Record<string, unknown> => ({
    ...cfg,
    tenants: [...(cfg.tenants as object[]), { id: 'globex', allowed_models: ['default'], api_keys: [] }],
  });
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'portico-collision-'));
    cfg = demoConfig({ logging: { level: 'silent' }, state: { kind: 'embedded', data_dir: dataDir } });
    gw = await startGatewayFromFile(cfg);
    const created = await req(gw.url, 'POST', '/admin/tenants', {
      id: 'globex',
      quota: { daily_requests: 1000 },
      system_prompt: 'API prompt',
    });
    assert.equal(created.status, 201);
    key = String((await req(gw.url, 'POST', '/admin/tenants/globex/keys', { label: 'prod' })).body.key);
    assert.equal((await chat(gw.url, key)).status, 200);
  });
  after(async () => {
    await gw.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a reload that declares it is refused, naming tenants[i].id; the API tenant and its key are untouched', async () => {
    const rejected = async (): Promise<number> =>
      (await gw.gateway.metrics.configReloads.get()).values.find((v) => v.labels.result === 'rejected')
        ?.value ?? 0;
    const before = await rejected();
    const version = gw.gateway.snapshot.version;
    await writeFile(gw.file, stringify(withGlobex()));
    assert.equal(await gw.watcher?.reload(), false, 'the reload is refused');
    assert.equal(await rejected(), before + 1, 'counted as rejected');
    assert.equal(gw.gateway.snapshot.version, version, 'the old config stays');
    // What the log says (the watcher logs the ConfigError's message).
    await assert.rejects(gw.gateway.reloadConfig(await loadConfigFile(gw.file, {})), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.problems[0]?.path, 'tenants[2].id');
      assert.match(
        e.message,
        /tenants\[2\]\.id: tenant "globex" already exists as a tenant created through the admin API/,
      );
      assert.match(
        e.message,
        /Give this entry another id, or delete the API tenant first \(DELETE \/admin\/tenants\/globex/,
      );
      return true;
    });
    const t = await req(gw.url, 'GET', '/admin/tenants/globex');
    assert.equal(t.body.source, 'api');
    assert.deepEqual(t.body.quota, { daily_requests: 1000 });
    assert.equal(t.body.system_prompt, 'API prompt');
    assert.equal((await chat(gw.url, key)).status, 200);

    // Back to the file without it: applied, and nothing of globex is lost.
    await writeFile(gw.file, stringify(cfg));
    assert.equal(await gw.watcher?.reload(), true);
    assert.equal((await req(gw.url, 'GET', '/admin/tenants/globex')).body.source, 'api');
    assert.equal((await chat(gw.url, key)).status, 200);
  });

  it('POST /admin/tenants with the id of a config tenant is a 409 that says so', async () => {
    const r = await req(gw.url, 'POST', '/admin/tenants', { id: 'acme-corp' });
    assert.equal(r.status, 409);
    assert.match(r.body.error?.message ?? '', /declared in the config file/);
  });

  it('a start with such a config is refused, naming tenants[i].id', async () => {
    await gw.cleanup();
    const dir = await mkdtemp(join(tmpdir(), 'portico-collision-start-'));
    const file = join(dir, 'portico.yaml');
    await writeFile(file, stringify({ ...withGlobex(), server: { host: '127.0.0.1', port: 0 } }));
    try {
      await assert.rejects(
        startGateway({ configFile: file, env: {}, defaultMetrics: false, watch: false }),
        (e: unknown) => e instanceof ConfigError && e.problems[0]?.path === 'tenants[2].id',
      );
      // The data directory is free again, and the tenant and key are still there.
      gw = await startGatewayFromFile(cfg);
      assert.equal((await req(gw.url, 'GET', '/admin/tenants/globex')).body.source, 'api');
      assert.equal((await chat(gw.url, key)).status, 200);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
