/**
 * Optional TLS (TLS 1.2+, HSTS header) with a certificate made by openssl for the test, and the
 * CLI: `portico config check` prints every problem with its path and exits non-zero.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { selfSignedCert } from '../support/tls.js';

const run = promisify(execFile);

describe('TLS', () => {
  let dir: string;
  let gw: TestGateway;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-tls-'));
    await selfSignedCert(dir);
    gw = await startTestGateway(
      demoConfig({
        server: {
          host: '127.0.0.1',
          port: 0,
          tls: { cert_file: join(dir, 'cert.pem'), key_file: join(dir, 'key.pem') },
        },
      }),
    );
  });
  after(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with HSTS and answers over TLS 1.2+', async () => {
    assert.match(gw.url, /^https:/);
    const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
    const res = await request(`${gw.url}/v1/models`, {
      headers: { authorization: `Bearer ${ACME_KEY}` },
      dispatcher,
    });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
    await res.body.dump();
    await dispatcher.close();
  });

  it('refuses TLS 1.1', async () => {
    const dispatcher = new Agent({
      connect: { rejectUnauthorized: false, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' },
    });
    await assert.rejects(request(`${gw.url}/health`, { dispatcher }));
    await dispatcher.close();
  });
});

describe('portico config check', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const cli = (args: string[]): Promise<{ code: number; stdout: string }> =>
    run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args]).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );

  it('accepts the demo config', async () => {
    const r = await cli(['config', 'check', 'examples/demo.yaml']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /ok: .*2 tenant\(s\), 2 model\(s\)/);
  });

  it('prints every problem with its path and exits 1', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      'server:\n  port: 99999\n  colour: blue\ntenants:\n  - id: t\n    allowed_models: [nope]\nmodels:\n  m:\n    backends:\n      - provider: openai\n        base_url: not a url\n',
    );
    const r = await cli(['config', 'check', file]);
    assert.equal(r.code, 1);
    for (const expected of [
      'server.port',
      'server: Unrecognized key: "colour"',
      'models.m.backends[0].base_url',
    ])
      assert.ok(r.stdout.includes(expected), `${expected} in:\n${r.stdout}`);
  });

  it('unknown command exits 2 with help', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'frobnicate']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((r as { code: number }).code, 2);
  });
});
