/**
 * Hot reload: editing the config file (here a tenant's prompt file, then the YAML itself) changes
 * /info and what reaches the backend within seconds, with no restart; a broken edit is rejected and
 * the old config keeps serving.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ACME_KEY, demoConfig, startGatewayFromFile } from '../support/gateway.js';
import { ConfigError } from '../../src/config/load.js';
import { ConfigSchema } from '../../src/config/schema.js';

type Running = Awaited<ReturnType<typeof startGatewayFromFile>>;

async function info(url: string): Promise<{ system_prompt: string; config_version: number }> {
  const res = await fetch(`${url}/info`, { headers: { authorization: `Bearer ${ACME_KEY}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as { system_prompt: string; config_version: number };
}

async function ask(url: string): Promise<string> {
  const res = await fetch(`${url}/ask`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
    body: '{"question":"q"}',
  });
  return ((await res.json()) as { answer: string }).answer;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`condition not met within ${timeoutMs} ms`);
}

function config(promptFile = 'acme.txt'): Record<string, unknown> {
  const base = demoConfig();
  const tenants = base.tenants as Array<Record<string, unknown>>;
  const acme = { ...tenants[0] };
  delete acme.system_prompt;
  acme.system_prompt_file = promptFile;
  return { ...base, tenants: [acme, tenants[1]], logging: { level: 'silent' } };
}

describe('hot reload', () => {
  let gw: Running;
  before(async () => {
    gw = await startGatewayFromFile(config(), { 'acme.txt': 'Design first, always.' });
  });
  after(() => gw.cleanup());

  it('editing a prompt file changes /info and what reaches the backend, no restart', async () => {
    assert.equal((await info(gw.url)).system_prompt, 'Design first, always.');
    const started = Date.now();
    // Save like an editor does: write a temp file and rename it over the original.
    const tmp = join(gw.dir, 'acme.txt.tmp');
    await writeFile(tmp, 'Wireframes before code.');
    await rename(tmp, join(gw.dir, 'acme.txt'));
    await waitFor(async () => (await info(gw.url)).system_prompt === 'Wireframes before code.');
    assert.ok(Date.now() - started < 5_000);
    assert.ok((await ask(gw.url)).startsWith('[system] Wireframes before code.'));
  });

  it('editing the YAML (inline prompt) takes effect; a broken edit keeps the old config', async () => {
    const cfg = config();
    const tenants = cfg.tenants as Array<Record<string, unknown>>;
    delete tenants[0]?.system_prompt_file;
    (tenants[0] as Record<string, unknown>).system_prompt = 'Inline prompt v2.';
    await writeFile(gw.file, stringify(cfg));
    await waitFor(async () => (await info(gw.url)).system_prompt === 'Inline prompt v2.');
    const version = (await info(gw.url)).config_version;
    const rejectedBefore = await gw.gateway.metrics.configReloads.get();

    // Broken: an unknown key, and YAML that does not parse.
    await writeFile(gw.file, (await readFile(gw.file, 'utf8')).replace('server:', 'server:\n  bogus_key: 1'));
    await new Promise((r) => setTimeout(r, 600));
    await writeFile(gw.file, 'tenants: [ {');
    await new Promise((r) => setTimeout(r, 600));
    const now = await info(gw.url);
    assert.equal(now.system_prompt, 'Inline prompt v2.');
    assert.equal(now.config_version, version);
    assert.ok((await ask(gw.url)).startsWith('[system] Inline prompt v2.'));
    const rejected =
      (await gw.gateway.metrics.configReloads.get()).values.find((v) => v.labels.result === 'rejected')
        ?.value ?? 0;
    const rejectedPrev = rejectedBefore.values.find((v) => v.labels.result === 'rejected')?.value ?? 0;
    assert.ok(rejected >= rejectedPrev + 1, 'rejection counted');

    // Fixing the file applies again.
    const fixed = config();
    ((fixed.tenants as Array<Record<string, unknown>>)[0] as Record<string, unknown>).system_prompt_file =
      'acme.txt';
    await writeFile(gw.file, stringify(fixed));
    await waitFor(async () => (await info(gw.url)).system_prompt === 'Wireframes before code.');
  });
});

describe('hot reload: admission.max_queue', () => {
  it('a new max_queue applies to later requests (review, 2026-12-07: it kept the start value)', async () => {
    const base = demoConfig({
      logging: { level: 'silent' },
      admission: { max_queue: 0, queue_timeout_ms: 5000 },
      models: {
        default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo', ttft_ms: 400 } }] },
      },
    });
    const tenants = base.tenants as Array<Record<string, unknown>>;
    tenants[0] = { ...tenants[0], limits: { max_in_flight: 1 } };
    const g = await startGatewayFromFile(base);
    const chat = async (): Promise<{ status: number; text: string }> => {
      const res = await fetch(`${g.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
      });
      return { status: res.status, text: await res.text() };
    };
    try {
      const [a, b] = await Promise.all([chat(), chat()]);
      assert.deepEqual([a.status, b.status].sort(), [200, 503]);
      // Says why: the queue is full — not "waited 5000 ms" (it did not wait).
      assert.match((a.status === 503 ? a : b).text, /admission queue is full \(admission\.max_queue: 0/);
      await writeFile(g.file, stringify({ ...base, admission: { max_queue: 100, queue_timeout_ms: 5000 } }));
      await waitFor(async () => g.gateway.snapshot.config.admission.max_queue === 100);
      const [c, d] = await Promise.all([chat(), chat()]);
      assert.deepEqual([c.status, d.status], [200, 200], 'the second waited in the queue');
    } finally {
      await g.cleanup();
    }
  });
});

describe('reloads that would change who a credential belongs to, or what opens the admin API', () => {
  let gw: Running;
  before(async () => {
    gw = await startGatewayFromFile(demoConfig());
  });
  after(() => gw.cleanup());

  const tenantOf = async (key: string): Promise<string> => {
    const res = await fetch(`${gw.url}/info`, { headers: { authorization: `Bearer ${key}` } });
    return ((await res.json()) as { tenant: string }).tenant;
  };

  it('the same API key under two tenants is rejected; the key stays with its tenant', async () => {
    const dup = demoConfig();
    const tenants = dup.tenants as Array<Record<string, unknown>>;
    (tenants[1] as Record<string, unknown>).api_keys = [{ value: ACME_KEY }];
    await writeFile(gw.file, stringify(dup));
    assert.equal(await gw.watcher?.reload(), false);
    assert.equal(await tenantOf(ACME_KEY), 'acme-corp');
  });

  it('removing admin.token is refused (the token stays in force, not silently); a new token applies', async () => {
    const adminStatus = async (token: string): Promise<number> =>
      (await fetch(`${gw.url}/admin/tenants`, { headers: { authorization: `Bearer ${token}` } })).status;
    const noToken = demoConfig();
    delete noToken.admin;
    assert.throws(
      () => gw.gateway.applyConfig({ config: ConfigSchema.parse(noToken), prompts: new Map(), files: [] }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /admin\.token: the admin token cannot be removed by a reload/);
        assert.match(e.message, /Restart to run without admin\.token/);
        return true;
      },
    );
    await writeFile(gw.file, stringify(noToken));
    assert.equal(await gw.watcher?.reload(), false);
    assert.equal(await adminStatus('test-admin-token'), 200);

    const rotated = demoConfig({ admin: { token: 'rotated-admin-token' } });
    await writeFile(gw.file, stringify(rotated));
    assert.equal(await gw.watcher?.reload(), true);
    assert.equal(await adminStatus('test-admin-token'), 401);
    assert.equal(await adminStatus('rotated-admin-token'), 200);
  });
});

describe('a gateway started without admin.token', () => {
  it('keeps its generated token across reloads without one', async () => {
    const cfg = demoConfig();
    delete cfg.admin;
    const gw = await startGatewayFromFile(cfg);
    try {
      const token = gw.gateway.generatedAdminToken;
      assert.ok(token);
      const tenants = cfg.tenants as Array<Record<string, unknown>>;
      (tenants[0] as Record<string, unknown>).system_prompt = 'v2';
      await writeFile(gw.file, stringify(cfg));
      assert.equal(await gw.watcher?.reload(), true);
      const res = await fetch(`${gw.url}/admin/tenants`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
    } finally {
      await gw.cleanup();
    }
  });
});
