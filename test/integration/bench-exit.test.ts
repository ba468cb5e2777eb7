/**
 * `portico bench run` says what is wrong: against a gateway that answers 401 it exits 1 with a
 * one-line reason naming the gateway; content-check failures are reported apart from errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ACME_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('portico bench run exit status', () => {
  let gw: TestGateway;
  let dir: string;
  let promptset: string;
  before(async () => {
    gw = await startTestGateway(demoConfig());
    dir = await mkdtemp(join(tmpdir(), 'portico-bench-exit-'));
    const gen = await cli(['promptset', 'generate', '--seed', '7', '--count', '6', '--out', join(dir, 'ps')]);
    assert.equal(gen.code, 0, gen.stderr);
    promptset = join(dir, 'ps', 'promptset.jsonl');
  });
  after(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });

  const bench = (key: string, extra: string[] = []) =>
    cli([
      'bench',
      'run',
      '--promptset',
      promptset,
      '--target',
      gw.url,
      '--key',
      key,
      '--model',
      'default',
      '--count',
      '6',
      '--run-id',
      `r-${key.length}-${extra.length}`,
      '--out',
      join(dir, 'out'),
      '--quiet',
      ...extra,
    ]);

  it('a gateway answering 401: exit 1 and one line with the reason', async () => {
    const r = await bench('sk-not-a-key-of-this-gateway');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] ?? '',
      /^portico bench run: 6 of 6 requests got no answer \(100\.0%, --max-error-rate is 0\.0%\): http_4xx=6; most common: HTTP 401: .* does not accept this key/,
    );
    assert.ok(lines[0]?.includes(gw.url), 'names the gateway');
  });

  it('a working key: exit 0; --max-error-rate tolerates errors; content checks are counted apart', async () => {
    const ok = await bench(ACME_KEY);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.doesNotMatch(ok.stdout, /errors \(no answer\)/);
    const tolerated = await bench('sk-nope', ['--max-error-rate', '1']);
    assert.equal(tolerated.code, 0, tolerated.stderr);
    assert.match(tolerated.stdout, /errors \(no answer\): http_4xx=6/);
  });

  it('the progress line and the summary count the same things under the same names', async () => {
    // Without --quiet: stderr is not a terminal, so the last progress line is a plain `bench: …`.
    const r = await cli([
      'bench',
      'run',
      '--promptset',
      promptset,
      '--target',
      gw.url,
      '--key',
      ACME_KEY,
      '--model',
      'default',
      '--count',
      '6',
      '--run-id',
      'progress',
      '--out',
      join(dir, 'out'),
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const progress = r.stderr.trim().split('\n').at(-1) ?? '';
    const p = /^bench: 6\/6 passed=(\d+) check_failed=(\d+) errors=(\d+) in-flight=0 /.exec(progress);
    assert.ok(p, progress);
    assert.equal(p[3], '0', 'answers that failed their content checks are not errors');
    assert.match(r.stdout, new RegExp(`^run progress: 6 requests, ${p[1]} passed \\(`));
    if (p[2] !== '0')
      assert.match(
        r.stdout,
        new RegExp(`; check_failed=${p[2]} \\(answers that failed their content checks\\)`),
      );
    assert.doesNotMatch(r.stdout, /errors \(no answer\)/);
  });
});
