/** `portico tenants|keys|usage` against a running gateway's admin API. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const run = promisify(execFile);

describe('admin CLI', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway(demoConfig());
  });
  after(() => gw.close());

  const cli = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const r = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args, '--url', gw.url], {
        env: { ...process.env, PORTICO_ADMIN_TOKEN: 'test-admin-token' },
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  };

  it('tenants add/list, keys create/list/revoke, usage report', async () => {
    const add = await cli(
      'tenants',
      'add',
      'initech',
      '--name',
      'Initech',
      '--prompt',
      'TPS reports first.',
      '--models',
      'default',
      '--daily-tokens',
      '100000',
    );
    assert.equal(add.code, 0, add.stderr);
    const list = await cli('tenants', 'list');
    assert.match(list.stdout, /initech\s+Initech/);
    assert.match(list.stdout, /acme-corp/);

    const created = await cli('keys', 'create', '--tenant', 'initech', '--label', 'laptop');
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^sk-portico-/);
    assert.match(created.stderr, /shown only once/);

    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);

    const keys = await cli('keys', 'list', '--tenant', 'initech', '--json');
    const parsed = JSON.parse(keys.stdout) as Array<{ id: string; label: string }>;
    assert.equal(parsed[0]?.label, 'laptop');
    assert.ok(!keys.stdout.includes(key));

    const month = new Date().toISOString().slice(0, 7);
    const csv = await cli('usage', 'report', '--tenant', 'initech', '--month', month, '--format', 'csv');
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines[0], 'tenant,group,requests,tokens_in,tokens_out,cost_usd,estimated,partial');
    assert.match(lines[1] ?? '', /^initech,\d{4}-\d{2}-\d{2},1,/);
    const table = await cli('usage', 'report', '--tenant', 'initech', '--month', month);
    assert.match(table.stdout, /TOTAL/);

    const revoked = await cli('keys', 'revoke', parsed[0]?.id ?? '');
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await fetch(`${gw.baseURL}/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(after.status, 401);
  });

  it("usage report: an unknown tenant exits 1, a bad month is a usage error in the user's words", async () => {
    const nope = await cli('usage', 'report', '--tenant', 'NOPE');
    assert.equal(nope.code, 1, nope.stdout + nope.stderr);
    assert.match(nope.stderr, /no tenant "NOPE" at http:\/\/127\.0\.0\.1:\d+ \(see: portico tenants list\)/);
    assert.equal(nope.stdout, '');
    const month = await cli('usage', 'report', '--tenant', 'acme-corp', '--month', '2026-13');
    assert.equal(month.code, 2);
    assert.match(month.stderr, /--month 2026-13: there is no month 13/);
    assert.doesNotMatch(month.stderr, /from must be/);
  });

  it('usage report: --from after --to is a usage error (exit 2), a deleted tenant keeps its report', async () => {
    const backwards = await cli('usage', 'report', '--from', '2026-12', '--to', '2026-01');
    assert.equal(backwards.code, 2, backwards.stdout + backwards.stderr);
    assert.match(backwards.stderr, /--from 2026-12 is after --to 2026-01/);
    const sameDay = await cli(
      'usage',
      'report',
      '--from',
      '2026-11-22',
      '--to',
      '2026-11-22',
      '--format',
      'json',
    );
    assert.equal(sameDay.code, 0, sameDay.stderr);
    // A tenant deleted after it made requests: its history stays reportable (the ledger keeps it).
    const h = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
    await fetch(`${gw.url}/admin/tenants`, {
      method: 'POST',
      headers: h,
      body: JSON.stringify({ id: 'gone-co' }),
    });
    const created = (await (
      await fetch(`${gw.url}/admin/tenants/gone-co/keys`, { method: 'POST', headers: h, body: '{}' })
    ).json()) as { key: string };
    const chat = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${created.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(chat.status, 200);
    await chat.text();
    const del = await fetch(`${gw.url}/admin/tenants/gone-co`, {
      method: 'DELETE',
      headers: { authorization: h.authorization },
    });
    assert.equal(del.status, 204);
    const report = await cli('usage', 'report', '--tenant', 'gone-co', '--format', 'csv');
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, /^gone-co,\d{4}-\d{2}-\d{2},1,/m);
  });

  it('keys list shows the keys declared in the config file, marked as such', async () => {
    const all = await cli('keys', 'list', '--json');
    assert.equal(all.code, 0, all.stderr);
    const keys = JSON.parse(all.stdout) as Array<{ tenant_id: string; source: string }>;
    for (const tenant of ['acme-corp', 'closed-ai'])
      assert.ok(
        keys.some((k) => k.tenant_id === tenant && k.source === 'config'),
        tenant,
      );
    const table = await cli('keys', 'list');
    // A config key without `id:` is named after its digest, not its place in the list.
    const acmeId = `acme-corp-cfg-${createHash('sha256').update(ACME_KEY).digest('hex').slice(0, 12)}`;
    assert.match(table.stdout, new RegExp(`${acmeId}\\s+acme-corp\\s+config`));
    assert.match(table.stdout, /source=config: declared in the config file; not revocable from the API/);
    // Revoking it says where it is declared and how to remove it (not "No key").
    const revoke = await cli('keys', 'revoke', acmeId);
    assert.equal(revoke.code, 3, revoke.stderr);
    assert.doesNotMatch(revoke.stderr, /No key/);
    assert.match(
      revoke.stderr,
      new RegExp(
        `HTTP 403: Key "${acmeId}" \\(tenant acme-corp\\) is declared in the config file, at tenants\\[0\\]\\.api_keys\\[0\\]: remove it there`,
      ),
    );
  });

  it('--url host:port without a scheme reaches the gateway; --expires takes a date', async () => {
    const r = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/main.ts',
        'keys',
        'create',
        '--tenant',
        'acme-corp',
        '--expires',
        '2027-01-01',
        '--json',
        '--url',
        gw.url.replace(/^http:\/\//, ''),
      ],
      { env: { ...process.env, PORTICO_ADMIN_TOKEN: 'test-admin-token' } },
    ).catch((e: { code: number; stdout: string; stderr: string }) => e);
    assert.equal((r as { code?: number }).code, undefined, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { expires_at: string }).expires_at, '2027-01-01T00:00:00.000Z');
  });

  it('explains a missing token and an unreachable gateway', async () => {
    const noToken = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'tenants', 'list'], {
      env: { ...process.env, PORTICO_ADMIN_TOKEN: '' },
    }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((noToken as { code: number }).code, 2);
    assert.match((noToken as { stderr: string }).stderr, /admin token/);
    const down = await run(process.execPath, [
      '--import',
      'tsx',
      'src/main.ts',
      'tenants',
      'list',
      '--url',
      'http://127.0.0.1:9',
      '--admin-token',
      'x',
    ]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((down as { code: number }).code, 3);
    assert.match((down as { stderr: string }).stderr, /cannot reach the gateway/);
    // A proxy's HTML 502 in front of the gateway: the status, the URL and the page's start, where
    // it printed "portico: Unexpected token '<'…" (review, 2026-12-14).
    const proxy = createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const bad = await run(process.execPath, [
        '--import',
        'tsx',
        'src/main.ts',
        'tenants',
        'list',
        '--url',
        url,
        '--admin-token',
        'x',
      ]).catch((e: { code: number; stderr: string }) => e);
      assert.equal((bad as { code: number }).code, 3);
      const stderr = (bad as { stderr: string }).stderr;
      assert.ok(
        stderr.startsWith(
          `portico: GET ${url}/admin/tenants: HTTP 502 Bad Gateway, not the admin API's JSON`,
        ),
        stderr,
      );
      assert.match(stderr, /"<html><head><title>502 Bad Gateway<\/title>/);
      assert.doesNotMatch(stderr, /Unexpected token/);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });
});
