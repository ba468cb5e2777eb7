/**
 * The console's admin endpoints against a real gateway and the HTTP simulator: the admin token
 * guards every one of them; stats and the request log follow real traffic; the playground runs
 * the full pipeline as the chosen tenant (its prompt, its rate limit, the ledger); /docs
 * documents the admin API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { createParser } from 'eventsource-parser';
import {
  ACME_KEY,
  ACME_PROMPT,
  CLOSED_KEY,
  demoConfig,
  startTestGateway,
  startTestSim,
  type TestGateway,
  type TestSim,
} from '../support/gateway.js';

const ADMIN = { authorization: 'Bearer test-admin-token' };

describe('console admin endpoints', () => {
  let sim: TestSim;
  let gw: TestGateway;
  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${gw.url}${path}`, { headers: ADMIN });
    assert.equal(r.status, 200, `${path}: ${r.status}`);
    return (await r.json()) as T;
  };
  const playground = (body: unknown) =>
    fetch(`${gw.url}/admin/playground`, {
      method: 'POST',
      headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  before(async () => {
    sim = await startTestSim({ sim: { mode: 'echo' } });
    gw = await startTestGateway(
      demoConfig({
        tenants: [
          {
            id: 'acme-corp',
            system_prompt: ACME_PROMPT,
            allowed_models: ['default'],
            api_keys: [{ value: ACME_KEY }],
          },
          {
            id: 'closed-ai',
            system_prompt: 'closed',
            allowed_models: ['default'],
            limits: { requests_per_second: 0.01, burst: 3 },
            api_keys: [{ value: CLOSED_KEY }],
          },
        ],
        models: {
          default: {
            pricing: { input_per_million: 1000, output_per_million: 1000 },
            backends: [{ id: 'sim-http', provider: 'openai', base_url: sim.baseURL }],
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it('refuses every console endpoint without the admin token; /docs documents the admin API', async () => {
    for (const [method, path] of [
      ['GET', '/admin/stats'],
      ['GET', '/admin/requests'],
      ['GET', '/admin/requests/req_x'],
      ['GET', '/admin/models'],
      ['POST', '/admin/playground'],
    ] as const) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
        const r = await fetch(`${gw.url}${path}`, { method, headers });
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'admin_unauthorized');
      }
    }
    const docs = await fetch(`${gw.url}/docs/json`);
    assert.equal(docs.status, 200);
    const spec = (await docs.json()) as { paths: Record<string, Record<string, { security?: unknown }>> };
    for (const p of [
      '/admin/tenants',
      '/admin/tenants/{id}/keys',
      '/admin/stats',
      '/admin/requests',
      '/admin/playground',
    ])
      assert.ok(spec.paths[p], `${p} documented`);
    assert.deepEqual(spec.paths['/admin/stats']?.get?.security, [{ adminToken: [] }]);
    assert.equal(spec.paths['/v1/chat/completions'], undefined);
  });

  it('stats and the request log follow real traffic', async () => {
    const acme = new OpenAI({ apiKey: ACME_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { response } = await acme.chat.completions
        .create({ model: 'default', messages: [{ role: 'user', content: `q${i}` }] })
        .withResponse();
      ids.push(response.headers.get('x-request-id') ?? '');
    }
    await acme.chat.completions
      .create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })
      .catch(() => 0);
    // The window leaves out the current second.
    await new Promise((r) => setTimeout(r, 1100));
    const stats = await get<{
      totals: {
        requests: number;
        errors: number;
        tokens_in: number;
        cost_usd: number;
        p50_ms: number | null;
      };
      by_tenant: Array<{ tenant: string; requests: number }>;
    }>('/admin/stats?window=60');
    assert.ok(stats.totals.requests >= 7);
    assert.ok(stats.totals.errors >= 1);
    assert.ok(stats.totals.tokens_in > 0 && stats.totals.cost_usd > 0 && stats.totals.p50_ms !== null);
    assert.ok((stats.by_tenant.find((r) => r.tenant === 'acme-corp')?.requests ?? 0) >= 7);

    const one = await get<{
      data: Array<{ request_id: string; tenant: string; backend: string; tokens_in: number }>;
    }>(`/admin/requests?request_id=${ids[3]}`);
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0]?.tenant, 'acme-corp');
    assert.equal(one.data[0]?.backend, 'sim-http');
    assert.ok((one.data[0]?.tokens_in ?? 0) > 0);
    const errs = await get<{ data: Array<{ status: number; model: string | null }> }>(
      '/admin/requests?status=4xx',
    );
    assert.ok(errs.data.length >= 1 && errs.data.every((r) => r.status >= 400 && r.status < 500));
    const byId = await get<{ request_id: string; request_body?: string }>(`/admin/requests/${ids[0]}`);
    assert.equal(byId.request_id, ids[0]);
    assert.equal(byId.request_body, undefined, 'no bodies unless the audit configuration stores them');
    const missing = await fetch(`${gw.url}/admin/requests/req_nope`, { headers: ADMIN });
    assert.equal(missing.status, 404);
    const bad = await fetch(`${gw.url}/admin/requests?status=abc`, { headers: ADMIN });
    assert.equal(bad.status, 400);
  });

  it('the playground streams as the tenant, through its limits and into the ledger', async () => {
    const res = await playground({ tenant: 'acme-corp', question: 'Where do we start?' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const id = res.headers.get('x-request-id') ?? '';
    let text = '';
    let usage: { prompt_tokens: number } | undefined;
    let done = false;
    const parser = createParser({
      onEvent(e) {
        if (e.data === '[DONE]') {
          done = true;
          return;
        }
        const c = JSON.parse(e.data) as {
          choices: Array<{ delta?: { content?: string } }>;
          usage?: { prompt_tokens: number } | null;
        };
        text += c.choices[0]?.delta?.content ?? '';
        if (c.usage) usage = c.usage;
      },
    });
    parser.feed(await res.text());
    assert.ok(done);
    assert.ok(text.includes(ACME_PROMPT), 'the tenant prompt was applied');
    assert.ok(text.includes('Where do we start?'));
    assert.ok(usage && usage.prompt_tokens > 0);
    const rec = await get<{
      tenant: string;
      route: string;
      endpoint: string;
      cost_usd: number;
      stream: boolean;
    }>(`/admin/requests/${id}`);
    assert.equal(rec.tenant, 'acme-corp');
    assert.equal(rec.endpoint, '/admin/playground');
    assert.equal(rec.stream, true);
    assert.ok(rec.cost_usd > 0);
    const usageRows = await get<{ data: Array<{ requests: number }> }>(
      '/admin/usage?tenant=acme-corp&group_by=day',
    );
    assert.ok((usageRows.data[0]?.requests ?? 0) >= 7, 'the playground request is in the ledger');

    // closed-ai has a burst of 3 and refills once per 100 s: the playground obeys it.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await playground({ tenant: 'closed-ai', question: 'hi' });
      statuses.push(r.status);
      await r.text();
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);

    const unknown = await playground({ tenant: 'nobody', question: 'hi' });
    assert.equal(unknown.status, 404);
    const wrongModel = await playground({ tenant: 'acme-corp', model: 'nope', question: 'hi' });
    assert.equal(wrongModel.status, 404);
    const invalid = await playground({ tenant: 'acme-corp' });
    assert.equal(invalid.status, 400);
  });

  it('lists models with their backends', async () => {
    const models = await get<{
      data: Array<{ id: string; backends: Array<{ id: string; healthy: boolean }> }>;
    }>('/admin/models');
    assert.deepEqual(
      models.data.map((m) => [m.id, m.backends.map((b) => b.id)]),
      [['default', ['sim-http']]],
    );
  });
});

describe('console settings and audit bodies', () => {
  let gw: TestGateway;
  let auditDir: string;
  before(async () => {
    auditDir = await mkdtemp(join(tmpdir(), 'portico-console-audit-'));
    gw = await startTestGateway(
      demoConfig({
        admin: { token: 'test-admin-token', console: false, request_log_size: 10 },
        telemetry: { audit: { enabled: true, dir: auditDir, bodies: true } },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  it("admin.console=false serves no console; the ring holds admin.request_log_size records, with the audit log's redacted bodies", async () => {
    const page = await fetch(`${gw.url}/console/`);
    assert.equal(page.status, 404);
    const acme = new OpenAI({ apiKey: ACME_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    for (let i = 0; i < 12; i++)
      await acme.chat.completions.create({
        model: 'default',
        messages: [{ role: 'user', content: `q${i}: write to jane.doe@example.com` }],
      });
    const info = await fetch(`${gw.url}/info`, { headers: { authorization: `Bearer ${ACME_KEY}` } });
    assert.equal(info.status, 200);
    const r = await fetch(`${gw.url}/admin/requests?limit=1000`, { headers: ADMIN });
    const body = (await r.json()) as {
      capacity: number;
      data: Array<{ route: string; request_body?: string; response_body?: string }>;
    };
    assert.equal(body.capacity, 10);
    assert.equal(body.data.length, 10);
    assert.equal(body.data[0]?.route, 'info');
    const chat = body.data[1];
    assert.equal(chat?.route, 'chat');
    assert.match(chat?.request_body ?? '', /q11: write to/);
    assert.ok(!(chat?.request_body ?? '').includes('jane.doe@example.com'), chat?.request_body);
    assert.ok(chat?.response_body !== undefined);
    assert.ok(!(chat?.response_body ?? '').includes('jane.doe@example.com'), chat?.response_body);
  });
});
