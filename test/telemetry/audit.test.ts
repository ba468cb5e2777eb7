/**
 * The audit log and PII redaction: one JSONL record per request with the documented fields;
 * with bodies on, a prompt holding an e-mail, a phone number, an SSN and a card number is stored
 * with all four redacted (also in the console's request log); with bodies off, no prompt text
 * appears in any log (audit file and every pino line at trace level); rotation by size and
 * retention in days; a tenant with redact_pii_upstream sends the redacted prompt upstream.
 * PII on its own line (after a newline, a tab or CRLF) is redacted in every body field (chat
 * messages, tool-call arguments, Responses input, Messages API, embeddings input), and an upstream
 * error that quotes the prompt is stored redacted. An audit directory that cannot be created fails
 * the start with an error naming telemetry.audit.dir (and never crashes the process); one removed
 * while serving is created again on the next write.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Gateway } from '../../src/app.js';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { RequestContext } from '../../src/pipeline/context.js';
import { buildHttpServer } from '../../src/http/server.js';
import { ACME_KEY, CLOSED_KEY, demoConfig } from '../support/gateway.js';

const PII = 'Contact jane.roe@example.com or +1 (415) 555-0134, SSN 123-45-6789, card 4111 1111 1111 1111.';
const MARKER = 'zebra-quartz-marker';
/** Each kind on its own line: in the body's JSON text a newline is `\n`, a letter before the number. */
const LINES = (sep: string): string =>
  `My details:${sep}123-45-6789${sep}+1 415 555 0134${sep}4111 1111 1111 1111${sep}jane.roe@example.com`;
const LEAK = /123-45-6789|555 0134|4111 1111|jane\.roe/;

async function start(raw: Record<string, unknown>): Promise<{
  url: string;
  logs: string[];
  gw: Gateway;
  close: () => Promise<void>;
}> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: 'trace' }, sink);
  const gw = await Gateway.create(await buildConfig(raw, { env: {} }), { defaultMetrics: false, logger });
  const app = await buildHttpServer(gw);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  gw.markReady();
  return { url, logs, gw, close: async () => (await app.close(), await gw.close()) };
}

async function chat(
  url: string,
  key: string,
  content: string,
): Promise<{ status: number; text: string; id: string }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', max_tokens: 400, messages: [{ role: 'user', content }] }),
  });
  return { status: res.status, text: await res.text(), id: res.headers.get('x-request-id') ?? '' };
}

async function readAudit(dir: string): Promise<Array<Record<string, unknown>>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort();
  const out: Array<Record<string, unknown>> = [];
  for (const f of files)
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n'))
      if (line) out.push(JSON.parse(line) as Record<string, unknown>);
  return out;
}

describe('audit log and PII redaction', () => {
  const dirs: string[] = [];
  after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('bodies on: all four PII kinds are redacted in the audit record and the console log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(dir);
    const g = await start(demoConfig({ telemetry: { audit: { enabled: true, dir, bodies: true } } }));
    let id: string;
    try {
      const r = await chat(g.url, ACME_KEY, PII);
      assert.equal(r.status, 200);
      id = r.id;
      const logged = await fetch(`${g.url}/admin/requests?request_id=${id}`, {
        headers: { authorization: 'Bearer test-admin-token' },
      });
      const view = (await logged.json()) as {
        data: Array<{ request_body?: string; response_body?: string }>;
      };
      assert.match(view.data[0]?.request_body ?? '', /\[REDACTED_EMAIL\]/);
      assert.doesNotMatch(JSON.stringify(view), /jane\.roe|555-0134|123-45-6789|4111 1111/);
    } finally {
      await g.close();
    }
    const records = await readAudit(dir);
    const rec = records.find((x) => x.request_id === id);
    assert.ok(rec, 'one record for the request');
    for (const k of [
      'time',
      'request_id',
      'correlation_id',
      'tenant',
      'key_id',
      'client_ip',
      'model',
      'backend',
      'status',
      'latency_ms',
      'tokens_in',
      'tokens_out',
      'cost_usd',
      'cache_hit',
    ])
      assert.ok(k in rec, `field ${k}`);
    assert.equal('at' in rec, false, 'the epoch-ms `at` is written as `time`, not twice');
    assert.deepEqual(Object.keys(rec).slice(0, 3), ['time', 'client_ip', 'request_id']);
    assert.equal(rec.tenant, 'acme-corp');
    assert.equal(rec.status, 200);
    const bodies = `${String(rec.request_body)} ${String(rec.response_body)}`;
    for (const tag of ['EMAIL', 'PHONE', 'SSN', 'CARD'])
      assert.match(String(rec.request_body), new RegExp(`REDACTED_${tag}`));
    // The echo simulator repeats the prompt: the stored answer is redacted too.
    assert.match(String(rec.response_body), /REDACTED_SSN/);
    assert.doesNotMatch(bodies, /jane\.roe|555-0134|123-45-6789|4111 1111 1111 1111/);
  });

  it('bodies off: no prompt text in the audit file or in any log line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(dir);
    const g = await start(
      demoConfig({
        logging: { level: 'trace' },
        telemetry: { audit: { enabled: true, dir, bodies: false } },
      }),
    );
    try {
      assert.equal((await chat(g.url, ACME_KEY, `${MARKER} ${PII}`)).status, 200);
      assert.equal((await chat(g.url, 'sk-bad-key', MARKER)).status, 401);
      const bad = await fetch(`${g.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: `{"model": "default", "messages": [{"role": "user", "content": "${MARKER}"`,
      });
      assert.equal(bad.status, 400);
    } finally {
      await g.close();
    }
    const text = (await readdir(dir)).length ? JSON.stringify(await readAudit(dir)) : '';
    assert.ok(text.length > 0, 'records were written');
    assert.doesNotMatch(text, new RegExp(MARKER));
    assert.doesNotMatch(text, /request_body|response_body/);
    assert.ok(g.logs.length > 0, 'the logger was capturing');
    assert.doesNotMatch(g.logs.join(''), new RegExp(MARKER));
  });

  it('bodies off: a malformed or misplaced prompt is not quoted by any error message (request log, audit file)', async () => {
    // Review, 2026-12: the invalid_json message carried V8's JSON.parse message, which quotes the
    // body around the fault (`..."content": my SSN is "...`), into GET /admin/requests and the file.
    const dir = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(dir);
    const g = await start(
      demoConfig({
        logging: { level: 'trace' },
        telemetry: { audit: { enabled: true, dir, bodies: false } },
      }),
    );
    const SECRET = 'Patient Jane Doe SSN 078-05-1120 diagnosed HIV';
    const LEAKS = /Patient|Jane|078-05|HIV|diagnosed/;
    const post = async (path: string, body: string): Promise<{ status: number; message: string }> => {
      const res = await fetch(`${g.url}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ACME_KEY}`,
          'x-api-key': ACME_KEY,
          'anthropic-version': '2023-06-01',
          'content-type': 'application/json',
        },
        body,
      });
      const b = (await res.json()) as { error?: { message?: string } };
      return { status: res.status, message: b.error?.message ?? '' };
    };
    const chatMsg = (m: Record<string, unknown>): string =>
      JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi', ...m }] });
    const malformed = [
      `{"model":"default","messages":[{"role":"user","content": ${SECRET}}]}`,
      `{'model': 'default', 'messages': [{'role': 'user', 'content': '${SECRET}'}]}`,
      `{"model":"default","messages":[{"role":"user","content":"x"}]} ${SECRET}`,
      `{"model":"default","messages":[{"role":"user","content":"${SECRET}\t${SECRET}"}]}`,
      `{"model":"default","messages":[{"role":"user","content":"${SECRET}\\q"}]}`,
      `{"model":"default",\n"messages":[{"role":"user",\n"content":"${SECRET}", ${SECRET}}]}`,
    ];
    try {
      for (const body of malformed) {
        for (const path of ['/v1/chat/completions', '/v1/messages', '/v1/responses']) {
          const r = await post(path, body);
          assert.equal(r.status, 400, `${path}: ${body}`);
          assert.match(r.message, /not valid JSON: .* at line \d+, column \d+/, r.message);
          assert.doesNotMatch(r.message, LEAKS, r.message);
        }
      }
      // Prompt text in the wrong field: refused without being quoted.
      const misplaced: Array<[string, string]> = [
        ['/v1/chat/completions', chatMsg({ role: SECRET })],
        ['/v1/chat/completions', JSON.stringify({ model: 'default', max_tokens: SECRET, messages: [] })],
        ['/v1/responses', JSON.stringify({ model: 'default', input: [{ role: SECRET, content: 'hi' }] })],
        ['/v1/responses', JSON.stringify({ model: 'default', input: [{ type: SECRET }] })],
        [
          '/v1/responses',
          JSON.stringify({ model: 'default', input: 'hi', include: [SECRET], service_tier: SECRET }),
        ],
        [
          '/v1/messages',
          JSON.stringify({ model: 'default', max_tokens: 10, messages: [{ role: SECRET, content: 'hi' }] }),
        ],
      ];
      for (const [path, body] of misplaced) {
        const r = await post(path, body);
        assert.equal(r.status, 400, `${path}: ${body} -> ${r.message}`);
        assert.doesNotMatch(r.message, LEAKS, r.message);
      }
      const log = await fetch(`${g.url}/admin/requests?limit=100`, {
        headers: { authorization: 'Bearer test-admin-token' },
      });
      const view = JSON.stringify(await log.json());
      assert.match(view, /invalid_json/, 'the refusals are in the request log');
      assert.doesNotMatch(view, LEAKS);
    } finally {
      await g.close();
    }
    const text = JSON.stringify(await readAudit(dir));
    assert.match(text, /invalid_json/, 'records were written');
    assert.doesNotMatch(text, LEAKS);
    assert.doesNotMatch(g.logs.join(''), LEAKS);
  });

  it('rotates by size and deletes files past retention', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(dir);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'audit-2001-01-01.0.jsonl'), '{"old":true}\n');
    const g = await start(
      demoConfig({ telemetry: { audit: { enabled: true, dir, max_file_bytes: 2048, retention_days: 7 } } }),
    );
    try {
      for (let i = 0; i < 30; i++) {
        assert.equal((await chat(g.url, CLOSED_KEY, `request ${i}`)).status, 200);
        if (i % 5 === 4) await g.gw.audit?.flush();
      }
    } finally {
      await g.close();
    }
    const files = (await readdir(dir)).sort();
    assert.ok(!files.includes('audit-2001-01-01.0.jsonl'), 'expired file deleted');
    assert.ok(files.length >= 2, `rotated: ${files.join(', ')}`);
    assert.equal((await readAudit(dir)).length, 30, 'no record lost across files');
  });

  it('redact_pii_upstream: the backend receives the redacted prompt', async () => {
    const cfg = demoConfig();
    (cfg.tenants as Array<Record<string, unknown>>)[0]!.redact_pii_upstream = true;
    const g = await start(cfg);
    try {
      const r = await chat(g.url, ACME_KEY, PII);
      const echoed = (JSON.parse(r.text) as { choices: Array<{ message: { content: string } }> }).choices[0]
        ?.message.content;
      assert.match(echoed ?? '', /\[REDACTED_EMAIL\]/);
      assert.doesNotMatch(echoed ?? '', /jane\.roe|123-45-6789|4111 1111/);
      const other = await chat(g.url, CLOSED_KEY, PII);
      assert.match(other.text, /jane\.roe/, 'tenants without the option are unchanged');
    } finally {
      await g.close();
    }
  });

  it('PII after a newline, a tab or CRLF is redacted in every body field and in the error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(dir);
    // A backend that refuses the prompt and quotes it back, as real APIs do.
    const upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        // Health probes come without a body.
        const msg = body
          ? (JSON.parse(body) as { messages?: Array<{ content: string }> }).messages?.at(-1)?.content
          : '';
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: { message: `Invalid content: ${msg}`, type: 'invalid_request_error' } }),
        );
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    const cfg = demoConfig({
      telemetry: { audit: { enabled: true, dir, bodies: true } },
      models: {
        default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] },
        refuses: { backends: [{ id: 'quoting', provider: 'openai', base_url: base, model: 'm' }] },
      },
    });
    (cfg.tenants as Array<Record<string, unknown>>)[0]!.allowed_models = ['default', 'refuses'];
    const g = await start(cfg);
    const post = async (path: string, body: unknown): Promise<number> => {
      const res = await fetch(`${g.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      await res.text();
      return res.status;
    };
    try {
      for (const sep of ['\n', '\t', '\r\n'])
        assert.equal(
          await post('/v1/chat/completions', {
            model: 'default',
            max_tokens: 5,
            messages: [{ role: 'user', content: LINES(sep) }],
          }),
          200,
        );
      assert.equal(
        await post('/v1/chat/completions', {
          model: 'default',
          max_tokens: 5,
          messages: [
            { role: 'user', content: 'save my details' },
            {
              role: 'assistant',
              content: null,
              tool_calls: [
                {
                  id: 'call_1',
                  type: 'function',
                  // JSON text in a string: its newlines are `\n` even after the body is parsed.
                  function: { name: 'save', arguments: JSON.stringify({ note: LINES('\n') }) },
                },
              ],
            },
            { role: 'tool', tool_call_id: 'call_1', content: LINES('\r\n') },
          ],
        }),
        200,
      );
      assert.equal(
        await post('/v1/responses', { model: 'default', max_output_tokens: 5, input: LINES('\n') }),
        200,
      );
      assert.equal(
        await post('/v1/messages', {
          model: 'default',
          max_tokens: 5,
          messages: [{ role: 'user', content: LINES('\t') }],
        }),
        200,
      );
      assert.equal(
        await post('/v1/embeddings', { model: 'default', input: [LINES('\n'), LINES('\t')] }),
        200,
      );
      assert.equal(
        await post('/v1/chat/completions', {
          model: 'refuses',
          messages: [{ role: 'user', content: LINES('\n') }],
        }),
        400,
      );
    } finally {
      await g.close();
      upstream.closeAllConnections();
      upstream.close();
    }
    const records = await readAudit(dir);
    assert.equal(records.length, 8, 'one record per request');
    for (const rec of records) {
      assert.match(
        String(rec.request_body),
        /REDACTED_SSN/,
        `${String(rec.endpoint)}: ${String(rec.request_body)}`,
      );
      assert.doesNotMatch(
        String(rec.request_body),
        LEAK,
        `${String(rec.endpoint)}: ${String(rec.request_body)}`,
      );
    }
    const refused = records.find((r) => r.status === 400);
    const error = (refused?.error ?? {}) as { message?: string };
    assert.match(error.message ?? '', /REDACTED_SSN/, 'the upstream error quoting the prompt is stored');
    assert.doesNotMatch(error.message ?? '', LEAK);
  });

  it('an audit dir that cannot be created fails the start, naming telemetry.audit.dir', async () => {
    const base = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(base);
    await writeFile(join(base, 'file'), 'x');
    const dir = join(base, 'file', 'audit');
    const loaded = await buildConfig(demoConfig({ telemetry: { audit: { enabled: true, dir } } }), {
      env: {},
    });
    await assert.rejects(Gateway.create(loaded, { defaultMetrics: false }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /telemetry\.audit\.dir: the audit directory .*file\/audit cannot be created/);
      assert.match(err.message, /ENOTDIR/);
      assert.match(err.message, /telemetry\.audit\.enabled: false/);
      return true;
    });
  });

  it('a bare audit log on an unusable dir drops and counts records, and writes once the dir can be made', async () => {
    const base = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(base);
    await writeFile(join(base, 'blocked'), 'x');
    const dir = join(base, 'blocked', 'audit');
    // The constructor alone (no create): its failed mkdir must not be an unhandled rejection.
    const gw = new Gateway(
      await buildConfig(demoConfig({ telemetry: { audit: { enabled: true, dir } } }), { env: {} }),
      { defaultMetrics: false },
    );
    const audit = gw.audit;
    assert.ok(audit);
    const ctx = (n: number): RequestContext =>
      new RequestContext({
        requestId: `req_${n}`,
        correlationId: `req_${n}`,
        route: 'chat',
        method: 'POST',
        endpoint: '/v1/chat/completions',
        clientIp: '127.0.0.1',
        snapshot: gw.snapshot,
      });
    try {
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(audit.opened(), /ENOTDIR/);
      audit.record(ctx(1), 200);
      await audit.flush();
      assert.equal(audit.dropped, 1, 'the record that could not be written is counted');
      await rm(join(base, 'blocked'));
      audit.record(ctx(2), 200);
      await audit.flush();
      assert.equal(audit.dropped, 1);
      assert.deepEqual(
        (await readAudit(dir)).map((r) => r.request_id),
        ['req_2'],
      );
    } finally {
      await gw.close();
    }
  });

  it('an audit dir removed while serving is created again on the next write', async () => {
    const base = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    dirs.push(base);
    const dir = join(base, 'audit');
    const g = await start(demoConfig({ telemetry: { audit: { enabled: true, dir } } }));
    try {
      assert.equal((await chat(g.url, ACME_KEY, 'first')).status, 200);
      await g.gw.audit?.flush();
      assert.equal((await readAudit(dir)).length, 1);
      await rm(dir, { recursive: true });
      const second = await chat(g.url, ACME_KEY, 'second');
      assert.equal(second.status, 200);
      await g.gw.audit?.flush();
      assert.deepEqual(
        (await readAudit(dir)).map((r) => r.request_id),
        [second.id],
      );
      assert.equal(g.gw.audit?.dropped, 0);
      assert.match(g.logs.join(''), /audit directory was missing; created it again/);
    } finally {
      await g.close();
    }
  });
});
