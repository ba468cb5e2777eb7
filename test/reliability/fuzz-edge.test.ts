/**
 * Reliability drill: the fuzz corpus. Valid requests to every tenant and admin endpoint, mutated
 * field by field with hostile values (NUL characters, lone surrogates, huge and non-finite numbers,
 * wrong types, deep nesting, long strings), malformed and oversize bodies, and hostile paths and
 * queries — against a gateway on each state family (embedded SQLite; Redis + Postgres). The
 * guarantee: bad input never yields a 5xx (nor an internal_error inside a stream), every error is
 * the catalog's JSON shape, and the gateway is still healthy afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { mulberry32 } from '../../src/lib/prng.js';
import { demoConfig, startTestGateway, ACME_KEY, type TestGateway } from '../support/gateway.js';
import { reachablePostgres, redisUnreachable } from '../support/processes.js';
import { drillSize, recordDrill, type DrillFigure } from './support.js';

const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = 'test-admin-token';
const BODY_LIMIT = 256 * 1024;

interface Case {
  label: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  headers: Record<string, string>;
  /** Raw body text (already serialised, possibly malformed). */
  body?: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const tenantHeaders = { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' };
const adminHeaders = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

/** Valid requests, one per endpoint: the seeds the mutations start from. */
const SEEDS: Array<{ name: string; method: 'POST' | 'PATCH'; path: string; admin: boolean; body: Json }> = [
  {
    name: 'chat',
    method: 'POST',
    path: '/v1/chat/completions',
    admin: false,
    body: {
      model: 'default',
      max_tokens: 8,
      temperature: 0.5,
      user: 'u1',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'hello' }] },
      ],
      tools: [
        {
          type: 'function',
          function: {
            name: 'f',
            description: 'd',
            parameters: { type: 'object', properties: { a: { type: 'string' } } },
          },
        },
      ],
      stop: ['\n\n'],
      metadata: { k: 'v' },
    },
  },
  {
    name: 'chat-stream',
    method: 'POST',
    path: '/v1/chat/completions',
    admin: false,
    body: {
      model: 'default',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 6,
      messages: [{ role: 'user', content: 'stream please' }],
    },
  },
  {
    name: 'completions',
    method: 'POST',
    path: '/v1/completions',
    admin: false,
    body: { model: 'default', prompt: ['a', 'b'], max_tokens: 4, n: 1, logprobs: null },
  },
  {
    name: 'embeddings',
    method: 'POST',
    path: '/v1/embeddings',
    admin: false,
    body: { model: 'default', input: ['x', 'y'], encoding_format: 'float', dimensions: 8 },
  },
  {
    name: 'rerank',
    method: 'POST',
    path: '/v1/rerank',
    admin: false,
    body: { model: 'default', query: 'q', documents: ['a', 'b'], top_n: 1 },
  },
  {
    name: 'messages',
    method: 'POST',
    path: '/v1/messages',
    admin: false,
    body: {
      model: 'default',
      max_tokens: 8,
      system: [{ type: 'text', text: 's' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      metadata: { user_id: 'u' },
    },
  },
  { name: 'ask', method: 'POST', path: '/ask', admin: false, body: { question: 'why?', max_tokens: 8 } },
  {
    name: 'predict',
    method: 'POST',
    path: '/api/search/predict',
    admin: false,
    body: { input: 'find it', max_tokens: 8 },
  },
  {
    name: 'admin-tenant',
    method: 'POST',
    path: '/admin/tenants',
    admin: true,
    body: {
      id: 'fuzzed',
      display_name: 'Fuzz',
      company: 'C',
      industry: 'I',
      system_prompt: 'p',
      allowed_models: ['default'],
      limits: { requests_per_second: 5, burst: 5 },
      quota: { daily_tokens: 1000 },
      max_tokens_cap: 100,
      priority: 'normal',
    },
  },
  {
    name: 'admin-patch',
    method: 'PATCH',
    path: '/admin/tenants/api-tenant',
    admin: true,
    body: { display_name: 'New', company: null, limits: { tokens_per_minute: 100 } },
  },
  {
    name: 'admin-key',
    method: 'POST',
    path: '/admin/tenants/api-tenant/keys',
    admin: true,
    body: { label: 'k', expires_at: '2099-01-01T00:00:00Z', quota: { daily_requests: 5 } },
  },
];

function deep(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? '['.repeat(depth) + ']'.repeat(depth)
    : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** Hostile values, as raw JSON text (some are not producible by JSON.stringify: 1e400, deep nesting). */
const EVIL: string[] = [
  'null',
  'true',
  '-1',
  '0',
  '-0',
  '1.5',
  '1e308',
  '-1e308',
  '1e400',
  '99999999999999999999999',
  '9007199254740993',
  '""',
  JSON.stringify('\u0000'),
  JSON.stringify('a\u0000b'),
  '"\\ud800"',
  '"\\udfff\\ud800"',
  JSON.stringify('é'.repeat(20_000)),
  // Special-token markers are ordinary text (a tenant with token limits counts them).
  JSON.stringify('<|endoftext|> <|endofprompt|>'),
  '[]',
  '{}',
  '[null]',
  '[{}]',
  '{"\\u0000":1}',
  deep(64, 'array'),
  deep(64, 'object'),
  deep(5000, 'array'),
  deep(5000, 'object'),
];

/** Every JSON path of a value (objects and arrays included), root excluded. */
function paths(v: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [];
  if (Array.isArray(v))
    v.forEach((x, i) => {
      out.push([...prefix, i], ...paths(x, [...prefix, i]));
    });
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) out.push([...prefix, k], ...paths(x, [...prefix, k]));
  return out;
}

/** JSON text of `v` with the value at `path` replaced by raw JSON text (or removed when raw is undefined). */
function replaceAt(v: Json, path: Array<string | number>, raw: string | undefined): string {
  const marker = `__FUZZ_${randomBytes(6).toString('hex')}__`;
  const clone = JSON.parse(JSON.stringify(v)) as Json;
  let node: Json = clone;
  for (let i = 0; i < path.length - 1; i++) node = (node as Record<string, Json>)[path[i] as string] as Json;
  const last = path[path.length - 1] as string | number;
  if (raw === undefined) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete (node as Record<string, Json>)[last];
    return JSON.stringify(clone);
  }
  (node as Record<string, Json>)[last as string] = marker;
  return JSON.stringify(clone).replace(JSON.stringify(marker), raw);
}

function malformedBodies(valid: string, rnd: () => number): Array<{ label: string; body: string }> {
  const cut = Math.max(1, Math.floor(rnd() * (valid.length - 1)));
  return [
    { label: 'empty', body: '' },
    { label: 'whitespace', body: ' \n\t ' },
    { label: 'truncated', body: valid.slice(0, cut) },
    { label: 'trailing garbage', body: `${valid}}}` },
    { label: 'trailing comma', body: valid.replace(/}$/, ',}') },
    { label: 'comment', body: `/* c */${valid}` },
    { label: 'single quotes', body: valid.replace(/"/g, "'") },
    { label: 'BOM', body: `\ufeff${valid}` },
    { label: 'NaN literal', body: valid.replace(/}$/, ',"x":NaN}') },
    { label: 'duplicate keys', body: valid.replace(/^{/, '{"model":"nope",') },
    { label: 'array root', body: `[${valid}]` },
    { label: 'string root', body: JSON.stringify(valid) },
    { label: 'number root', body: '12345' },
    { label: 'null root', body: 'null' },
    { label: 'deep array root', body: deep(100_000, 'array') },
    { label: 'deep object root', body: deep(100_000, 'object') },
    { label: 'oversize', body: JSON.stringify({ model: 'default', pad: 'x'.repeat(BODY_LIMIT + 1024) }) },
    { label: 'invalid escape', body: valid.replace(/}$/, ',"x":"\\q"}') },
    { label: 'raw control char', body: valid.replace(/}$/, ',"x":"a\u0001b"}') },
  ];
}

const HOSTILE_URLS: Array<{ method: 'GET' | 'POST' | 'DELETE'; path: string; admin: boolean }> = [
  { method: 'GET', path: '/admin/usage?from=99999999999999999', admin: true },
  { method: 'GET', path: '/admin/usage?from=1e400', admin: true },
  { method: 'GET', path: '/admin/usage?to=-5', admin: true },
  { method: 'GET', path: '/admin/usage?from=2026-13', admin: true },
  { method: 'GET', path: '/admin/usage?from=2026-02-31', admin: true },
  { method: 'GET', path: '/admin/usage?group_by=bogus', admin: true },
  { method: 'GET', path: '/admin/usage?tenant=%00', admin: true },
  { method: 'GET', path: '/admin/usage?tenant=%ff%fe', admin: true },
  { method: 'GET', path: '/admin/usage?tenant=a&tenant=b', admin: true },
  { method: 'GET', path: `/admin/usage?model=${'m'.repeat(5000)}`, admin: true },
  { method: 'GET', path: '/admin/tenants/acme%00corp', admin: true },
  { method: 'GET', path: '/admin/tenants/%ff', admin: true },
  { method: 'GET', path: `/admin/tenants/${'t'.repeat(3000)}`, admin: true },
  { method: 'GET', path: '/admin/tenants/..%2f..%2fetc', admin: true },
  { method: 'DELETE', path: '/admin/tenants/%00', admin: true },
  { method: 'GET', path: '/admin/tenants/%00/keys', admin: true },
  { method: 'POST', path: '/admin/keys/key%00/revoke', admin: true },
  { method: 'POST', path: '/admin/keys/%ff%ff/revoke', admin: true },
  { method: 'GET', path: '/admin/keys?tenant=%00', admin: true },
  { method: 'GET', path: '/v1/models/%00', admin: false },
  { method: 'POST', path: '/api/%00/predict', admin: false },
  { method: 'POST', path: `/api/${'x'.repeat(3000)}/predict`, admin: false },
  { method: 'GET', path: '/info?x=%00', admin: false },
];

function buildCorpus(seed: number, mutationsPerSeed: number): Case[] {
  const rnd = mulberry32(seed);
  const cases: Case[] = [];
  for (const s of SEEDS) {
    const headers = s.admin ? adminHeaders : tenantHeaders;
    const valid = JSON.stringify(s.body);
    cases.push({ label: `${s.name}: valid`, method: s.method, path: s.path, headers, body: valid });
    const all: Array<{ label: string; body: string }> = [];
    for (const p of paths(s.body)) {
      all.push({ label: `${p.join('.')} removed`, body: replaceAt(s.body, p, undefined) });
      for (const e of EVIL)
        all.push({ label: `${p.join('.')} = ${e.slice(0, 24)}`, body: replaceAt(s.body, p, e) });
    }
    // Deterministic sample (the full drill runs everything).
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [all[i], all[j]] = [
        all[j] as { label: string; body: string },
        all[i] as { label: string; body: string },
      ];
    }
    for (const m of all.slice(0, mutationsPerSeed))
      cases.push({ label: `${s.name}: ${m.label}`, method: s.method, path: s.path, headers, body: m.body });
    for (const m of malformedBodies(valid, rnd))
      cases.push({ label: `${s.name}: ${m.label}`, method: s.method, path: s.path, headers, body: m.body });
    cases.push({
      label: `${s.name}: text/plain`,
      method: s.method,
      path: s.path,
      headers: { ...headers, 'content-type': 'text/plain' },
      body: valid,
    });
  }
  for (const u of HOSTILE_URLS)
    cases.push({
      label: `url ${u.method} ${u.path.slice(0, 60)}`,
      method: u.method,
      path: u.path,
      headers: u.admin ? adminHeaders : tenantHeaders,
      ...(u.method === 'POST' ? { body: '{"input":"x"}' } : {}),
    });
  return cases;
}

interface Outcome {
  status: number;
  label: string;
  /** Why the answer breaks the guarantee, if it does. */
  problem?: string;
}

async function runCase(pool: Pool, c: Case): Promise<Outcome> {
  const res = await pool.request({
    method: c.method,
    path: c.path,
    headers: c.headers,
    ...(c.body !== undefined ? { body: c.body } : {}),
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const text = await res.body.text();
  const ct = String(res.headers['content-type'] ?? '');
  let problem: string | undefined;
  if (res.statusCode >= 500) problem = `status ${res.statusCode}: ${text.slice(0, 200)}`;
  else if (ct.startsWith('text/event-stream')) {
    if (text.includes('"internal_error"') || text.includes('"api_error"'))
      problem = `stream error: ${text.slice(-300)}`;
  } else if (res.statusCode >= 400) {
    try {
      const body = JSON.parse(text) as { error?: { message?: unknown; type?: unknown } };
      if (typeof body.error?.message !== 'string' || typeof body.error.type !== 'string')
        problem = `error body not in the catalog's shape: ${text.slice(0, 200)}`;
    } catch {
      problem = `error body is not JSON: ${text.slice(0, 200)}`;
    }
  }
  return { status: res.statusCode, label: c.label, ...(problem ? { problem } : {}) };
}

function gatewayConfig(state: Record<string, unknown>): Record<string, unknown> {
  const base = demoConfig();
  return {
    ...base,
    server: { host: '127.0.0.1', port: 0, body_limit_bytes: BODY_LIMIT },
    state,
    tenants: (base['tenants'] as Array<Record<string, unknown>>).map((t) =>
      t['id'] === 'acme-corp'
        ? {
            ...t,
            limits: { requests_per_second: 100_000, tokens_per_minute: 100_000_000 },
            quota: { daily_tokens: 100_000_000 },
          }
        : t,
    ),
    models: {
      default: {
        backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo', output_tokens: 8 } }],
      },
    },
    routes: { search: { model: 'default' } },
  };
}

const results: Array<{
  mode: string;
  cases: number;
  byClass: Record<string, number>;
  problems: Outcome[];
  ms: number;
}> = [];

async function fuzz(gw: TestGateway, mode: string): Promise<void> {
  // An API tenant for the admin PATCH/key seeds.
  await fetch(`${gw.url}/admin/tenants`, {
    method: 'POST',
    headers: adminHeaders,
    body: JSON.stringify({ id: 'api-tenant', allowed_models: ['default'] }),
  });
  const corpus = buildCorpus(15, drillSize(25, 100_000));
  const pool = new Pool(gw.url, { connections: 8 });
  const outcomes: Outcome[] = [];
  const started = performance.now();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < corpus.length) {
          const c = corpus[next++] as Case;
          try {
            outcomes.push(await runCase(pool, c));
          } catch (err) {
            outcomes.push({ status: 0, label: c.label, problem: `transport: ${String(err)}` });
          }
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const ms = performance.now() - started;
  const health = await fetch(`${gw.url}/health`);
  assert.equal(health.status, 200, 'the gateway is healthy after the corpus');
  const byClass: Record<string, number> = {};
  for (const o of outcomes) {
    const k = o.status === 0 ? 'transport' : `${Math.floor(o.status / 100)}xx`;
    byClass[k] = (byClass[k] ?? 0) + 1;
  }
  const problems = outcomes.filter((o) => o.problem);
  results.push({ mode, cases: outcomes.length, byClass, problems, ms });
  assert.deepEqual(
    problems.slice(0, 10).map((p) => `${p.label} -> ${p.problem}`),
    [],
    `${problems.length} of ${outcomes.length} cases broke the guarantee`,
  );
}

describe('reliability drill: fuzz corpus at the edge, both state families', () => {
  after(async () => {
    if (results.length === 0) return;
    const figures: DrillFigure[] = [];
    for (const r of results) {
      figures.push({ label: `${r.mode}: cases sent`, value: r.cases });
      figures.push({
        label: `${r.mode}: answers by class`,
        value: Object.entries(r.byClass)
          .sort()
          .map(([k, n]) => `${k} ${n}`)
          .join(', '),
      });
      figures.push({
        label: `${r.mode}: 5xx answers, internal errors in streams, non-catalog error bodies, transport errors`,
        value: r.problems.length,
        bound: '0',
        ok: r.problems.length === 0,
      });
      figures.push({ label: `${r.mode}: corpus time`, value: Math.round(r.ms), unit: 'ms' });
    }
    await recordDrill('fuzz-edge', {
      title:
        'Fuzz corpus: malformed JSON, NUL bytes, huge numbers, deep nesting, oversize bodies, hostile URLs',
      guarantee:
        'bad input never yields a 5xx, a crash or a hang: every refusal is a 4xx in the catalog shape, in every state family',
      figures,
      notes: [
        `${SEEDS.length} endpoint seeds (tenant API, Anthropic Messages, /ask, team route, admin API); each mutated at every JSON path with ${EVIL.length} hostile values or removed; ${HOSTILE_URLS.length} hostile URLs; ${malformedBodies('{}', () => 0.5).length} malformed bodies per seed.`,
      ],
    });
  });

  describe('embedded (SQLite)', () => {
    let gw: TestGateway;
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'portico-fuzz-'));
      gw = await startTestGateway(gatewayConfig({ kind: 'embedded', data_dir: dir }));
    });
    after(async () => {
      await gw.close();
      await rm(dir, { recursive: true, force: true });
    });
    it('no 5xx, every error in the catalog shape, healthy afterwards', async () => {
      await fuzz(gw, 'embedded');
    });
  });

  describe('distributed (Redis + Postgres)', () => {
    let gw: TestGateway | undefined;
    let skip: string | undefined;
    const schema = `portico_fuzz_${randomBytes(4).toString('hex')}`;
    before(async () => {
      const redis = await redisUnreachable(REDIS_URL);
      const pg = await reachablePostgres();
      skip = redis ?? ('reason' in pg ? pg.reason : undefined);
      if (skip) {
        if (process.env.CI === 'true') throw new Error(`CI=true but ${skip}`);
        console.warn(`SKIPPED the distributed fuzz drill: ${skip}`);
        return;
      }
      gw = await startTestGateway(
        gatewayConfig({
          kind: 'distributed',
          redis: { url: REDIS_URL, key_prefix: `portico-fuzz-${randomBytes(4).toString('hex')}:` },
          postgres: { url: 'url' in pg ? pg.url : '', schema },
        }),
      );
    });
    after(async () => {
      if (!gw) return;
      await gw.close();
      const pg = await reachablePostgres();
      if ('url' in pg) {
        const { default: pgLib } = await import('pg');
        const c = new pgLib.Client({ connectionString: pg.url });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      }
    });
    it('no 5xx, every error in the catalog shape, healthy afterwards', async (t) => {
      if (skip || !gw) {
        t.skip(skip);
        return;
      }
      await fuzz(gw, 'distributed');
    });
  });
});
