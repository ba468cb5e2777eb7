/**
 * The shipped examples work as documented: every examples/*.yaml passes `config check`; the demo
 * (what `npm start` runs) answers /ask for both demo keys with each tenant's own system prompt
 * (echo simulator); examples/limits.yaml limits acme-corp to 5 requests/s (burst 5) and gives
 * closed-ai a 2,000-token daily quota.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load.js';
import { startBanner, startGateway, type RunningGateway } from '../../src/cli/start.js';
import { ACME_KEY, demoConfig, startTestGateway } from '../support/gateway.js';

const QUESTION = 'How should we build a real-time collaboration platform?';

async function ask(url: string, key: string, max_tokens = 512): Promise<Response> {
  return fetch(`${url}/ask`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ question: QUESTION, max_tokens }),
  });
}

describe('examples', () => {
  const running: RunningGateway[] = [];
  const dirs: string[] = [];
  after(async () => {
    await Promise.all(running.map((r) => r.stop(1_000)));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('every example config is valid', async () => {
    const files = (await readdir('examples')).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.includes('demo.yaml') && files.includes('limits.yaml'));
    for (const f of files) await loadConfigFile(join('examples', f), { PORTICO_ADMIN_TOKEN: 'x' });
  });

  it("demo: the same question reaches the backend with each tenant's own system prompt", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-demo-'));
    dirs.push(dir);
    const gw = await startGateway({
      configFile: 'examples/demo.yaml',
      // no engine model here (and no download in CI): `default` falls back to the echo simulator
      env: {
        PORTICO_PORT: '0',
        PORTICO_DATA_DIR: join(dir, 'data'),
        PORTICO_DEMO_MODEL: join(dir, 'absent.gguf'),
      },
      defaultMetrics: false,
      watch: false,
    });
    running.push(gw);
    gw.gateway.logger.level = 'silent';
    const acme = (await (await ask(gw.url, 'sk-demo-acme-corp')).json()) as {
      answer: string;
      tenant: string;
    };
    const closed = (await (await ask(gw.url, 'sk-demo-closed-ai')).json()) as {
      answer: string;
      tenant: string;
    };
    const acmePrompt = (await readFile('examples/prompts/acme-corp.txt', 'utf8')).trim();
    const closedPrompt = (await readFile('examples/prompts/closed-ai.txt', 'utf8')).trim();
    assert.equal(acme.tenant, 'acme-corp');
    assert.equal(acme.answer, `[system] ${acmePrompt}\n[user] ${QUESTION}`);
    assert.equal(closed.answer, `[system] ${closedPrompt}\n[user] ${QUESTION}`);
    assert.match(acmePrompt, /design/i);
    assert.match(closedPrompt, /code/i);
    const info = (await (
      await fetch(`${gw.url}/info`, { headers: { authorization: 'Bearer sk-demo-closed-ai' } })
    ).json()) as { system_prompt: string };
    assert.equal(info.system_prompt, closedPrompt);
    // The start banner warns about both public demo keys and suggests a request with one of them.
    const banner = startBanner(gw.gateway, gw.url, 'examples/demo.yaml').join('\n');
    assert.match(banner, /WARNING: demo key for tenant acme-corp: sk-demo-acme-corp/);
    assert.match(banner, /WARNING: demo key for tenant closed-ai: sk-demo-closed-ai/);
    assert.match(banner, /Try: curl -s \S+\/ask -H 'Authorization: Bearer sk-demo-acme-corp'/);
  });

  it('start banner of a config without demo keys: no warning, a placeholder key in the hint', async () => {
    const gw = await startTestGateway(demoConfig());
    try {
      const banner = startBanner(gw.gateway, gw.url, 'portico.yaml').join('\n');
      assert.doesNotMatch(banner, /WARNING|sk-demo-/);
      assert.ok(!banner.includes(ACME_KEY), 'configured keys are never printed');
      assert.match(banner, /Authorization: Bearer <tenant API key>/);
    } finally {
      await gw.close();
    }
  });

  it('limits: acme-corp 5 requests/s with burst 5; closed-ai 2,000 tokens a day', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-limits-'));
    dirs.push(dir);
    const gw = await startGateway({
      configFile: 'examples/limits.yaml',
      env: { PORTICO_PORT: '0', PORTICO_DATA_DIR: join(dir, 'data') },
      defaultMetrics: false,
      watch: false,
    });
    running.push(gw);
    gw.gateway.logger.level = 'silent';
    const statuses = await Promise.all(
      Array.from({ length: 8 }, () => ask(gw.url, 'sk-demo-acme-corp', 16).then((r) => r.status)),
    );
    assert.equal(statuses.filter((s) => s === 200).length, 5, statuses.join());
    assert.equal(statuses.filter((s) => s === 429).length, 3);

    let last: Response | undefined;
    for (let i = 0; i < 20; i++) {
      last = await ask(gw.url, 'sk-demo-closed-ai', 256);
      if (last.status !== 200) break;
    }
    assert.equal(last?.status, 429);
    assert.equal(last?.headers.get('x-should-retry'), 'false');
    assert.equal(((await last?.json()) as { error: { code: string } }).error.code, 'insufficient_quota');
  });
});
