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
import { freePort } from '../support/processes.js';

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
    // Swagger UI (built on the first /docs request): the page, its redirect, a 404 in the OpenAI shape.
    const page = await fetch(`${gw.url}/docs`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /swagger/i);
    const moved = await fetch(`${gw.url}/docs/static/index.html`, { redirect: 'manual' });
    assert.equal(moved.status, 302);
    assert.equal(moved.headers.get('location'), '/docs/');
    assert.equal(await moved.text(), '');
    const missing = await fetch(`${gw.url}/docs/nothing-here`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
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

  it('a playground tenant id no store can hold is a 400 naming `tenant`, not a 503 (review, 2026-12-14)', async () => {
    // Before: the tenant cache wrapped the store's invalid-input error as "store unavailable":
    // 503 state_unavailable with a retry-after, a state error counted and "lookup failed" logged.
    const errorsBefore = await stateErrors();
    for (const tenant of ['a\u0000b', '\ud800']) {
      const res = await playground({ tenant, question: 'hi' });
      const body = (await res.json()) as { error: { code: string; param: string; message: string } };
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(body.error.code, 'invalid_request');
      assert.equal(body.error.param, 'tenant');
      assert.match(body.error.message, /NUL character or an unpaired surrogate/);
      assert.equal(res.headers.get('retry-after'), null);
    }
    assert.equal(await stateErrors(), errorsBefore, 'no state error counted');
  });

  async function stateErrors(): Promise<number> {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith('portico_state_errors_total{'))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  }

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

describe('request log: every answered request; pools: the fallback chain and who serves', () => {
  let gw: TestGateway;
  const get = async <T>(path: string, headers: Record<string, string> = ADMIN): Promise<T> => {
    const r = await fetch(`${gw.url}${path}`, { headers });
    assert.equal(r.status, 200, `${path}: ${r.status}`);
    return (await r.json()) as T;
  };
  interface Serving {
    model: string;
    backends: string[];
    fallback: boolean;
    degraded: boolean;
  }
  interface Rec {
    request_id: string;
    status: number;
    route: string;
    endpoint: string;
    backend: string | null;
    fallback_model: string | null;
    error: { code: string; message: string } | null;
  }

  before(async () => {
    const closedPort = await freePort(); // nothing listens there
    gw = await startTestGateway(
      demoConfig({
        server: { host: '127.0.0.1', port: 0, body_limit_bytes: 2048 },
        tenants: [
          {
            id: 'acme-corp',
            system_prompt: ACME_PROMPT,
            allowed_models: ['default', 'primary'],
            api_keys: [{ value: ACME_KEY }],
          },
        ],
        models: {
          default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] },
          // Its only backend is down: requests fail over to `default`; after 2 failures the
          // circuit opens and `default` is the one serving.
          primary: {
            backends: [{ id: 'nowhere', provider: 'openai', base_url: `http://127.0.0.1:${closedPort}/v1` }],
            circuit: { failures: 2, open_ms: 600_000 },
            health_check: { enabled: false },
            fallbacks: ['default'],
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
  });

  it('logs 415, 413 and bad-JSON rejections and every error with its message', async () => {
    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, ...headers },
        body,
      });
    const json = { 'content-type': 'application/json' };
    const chat = JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    const cases: Array<[number, string, Response]> = [
      [415, 'unsupported_media_type', await post({ 'content-type': 'text/plain' }, chat)],
      [413, 'payload_too_large', await post(json, JSON.stringify({ pad: 'x'.repeat(4096) }))],
      [400, 'invalid_json', await post(json, '{"model": "default",')],
      [404, 'model_not_found', await post(json, chat.replace('"default"', '"nope"'))],
    ];
    for (const [status, code, res] of cases) {
      assert.equal(res.status, status, code);
      const body = (await res.json()) as { error: { message: string; code: string } };
      assert.equal(body.error.code, code);
      const id = res.headers.get('x-request-id') ?? '';
      const rec = await get<Rec>(`/admin/requests/${id}`);
      assert.equal(rec.status, status);
      assert.equal(rec.route, 'chat');
      assert.equal(rec.endpoint, '/v1/chat/completions');
      assert.deepEqual(rec.error, { code, message: body.error.message });
    }
    const only415 = await get<{ data: Rec[] }>('/admin/requests?status=415');
    assert.deepEqual(
      only415.data.map((r) => r.error?.code),
      ['unsupported_media_type'],
    );
    // A request that succeeded has no error.
    const ok = await post(json, chat);
    assert.equal(ok.status, 200);
    assert.equal((await get<Rec>(`/admin/requests/${ok.headers.get('x-request-id')}`)).error, null);
  });

  it('shows the fallback chain and which member serves in /admin/models, /admin/backends, /ready and /info', async () => {
    type Model = {
      id: string;
      chain: string[];
      fallbacks: string[];
      fallback_for: string[];
      serving: Serving | null;
    };
    const models = async () => (await get<{ data: Model[] }>('/admin/models')).data;
    const before = await models();
    const primary = before.find((m) => m.id === 'primary');
    assert.deepEqual(primary?.chain, ['primary', 'default']);
    assert.deepEqual(primary?.fallbacks, ['default']);
    assert.deepEqual(primary?.serving, {
      model: 'primary',
      backends: ['nowhere'],
      fallback: false,
      degraded: false,
    });
    assert.deepEqual(before.find((m) => m.id === 'default')?.fallback_for, ['primary']);

    // The backend fails; each request is answered by the fallback and says so in the log.
    const acme = new OpenAI({ apiKey: ACME_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    for (let i = 0; i < 3; i++) {
      const { data, response } = await acme.chat.completions
        .create({ model: 'primary', messages: [{ role: 'user', content: `fallback ${i}` }] })
        .withResponse();
      assert.match(data.choices[0]?.message.content ?? '', new RegExp(`fallback ${i}`));
      const rec = await get<Rec>(`/admin/requests/${response.headers.get('x-request-id')}`);
      assert.equal(rec.backend, 'sim-echo');
      assert.equal(rec.fallback_model, 'default');
    }

    const want: Serving = { model: 'default', backends: ['sim-echo'], fallback: true, degraded: false };
    assert.deepEqual((await models()).find((m) => m.id === 'primary')?.serving, want);
    const backends = await get<{
      data: Array<{
        model: string;
        chain: string[];
        serving: Serving | null;
        backends: Array<{ id: string; state: string }>;
      }>;
    }>('/admin/backends');
    const pool = backends.data.find((p) => p.model === 'primary');
    assert.deepEqual(pool?.serving, want);
    assert.deepEqual(pool?.chain, ['primary', 'default']);
    assert.equal(pool?.backends[0]?.state, 'open');
    const ready = await get<{ ready: boolean; serving: Record<string, Serving | null> }>('/ready');
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.serving.primary, want);
    assert.deepEqual(ready.serving.default?.model, 'default');
    const info = await get<{
      models: Array<{
        alias: string;
        fallbacks: string[];
        serving: Serving | null;
        backends: Array<{ id: string; healthy: boolean; state: string }>;
      }>;
    }>('/info', { authorization: `Bearer ${ACME_KEY}` });
    const mine = info.models.find((m) => m.alias === 'primary');
    assert.deepEqual(mine?.fallbacks, ['default']);
    assert.deepEqual(mine?.serving, want);
    assert.deepEqual(
      mine?.backends.map((b) => [b.id, b.state]),
      [['nowhere', 'open']],
    );
  });
});
