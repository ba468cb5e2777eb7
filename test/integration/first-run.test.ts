/**
 * A calm first run: `portico start` on a demo-like config whose engine cannot fetch its model
 * (the hub unreachable, as offline) prints its banner, logs "portico listening", then ONE warning
 * that says the simulator answers meanwhile and how to use a local model — no error-level line.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/processes.js';

describe('first run, offline', () => {
  it('banner, then one warning with the right advice; the simulator answers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-first-run-'));
    const hub = await freePort(); // nothing listens: the model hub is unreachable
    const config = join(dir, 'portico.yaml');
    await writeFile(
      config,
      [
        'logging: { format: json }',
        'state: { kind: memory }',
        'tenants:',
        '  - id: t',
        '    api_keys: [{ value: sk-demo-first-run }]',
        'models:',
        '  default:',
        '    backends: [{ id: qwen-engine, provider: engine, model_file: "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M" }]',
        '    fallbacks: [sim]',
        '  sim:',
        '    backends: [{ id: sim-echo, provider: sim, sim: { mode: echo } }]',
        '',
      ].join('\n'),
    );
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', 'start', '--config', config, '--port', '0'],
      {
        env: {
          ...process.env,
          HF_ENDPOINT: `http://127.0.0.1:${hub}`,
          PORTICO_MODELS_DIR: join(dir, 'models'),
          PORTICO_ADMIN_TOKEN: 'first-run-admin',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const until = Date.now() + 30_000;
      while (!out.includes('has no model yet') && Date.now() < until && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 100));
      const lines = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: number; msg: string; url?: string });
      const listening = lines.findIndex((l) => l.msg === 'portico listening');
      const warnings = lines.filter((l) => l.level === 40);
      assert.ok(listening >= 0, out);
      assert.equal(warnings.length, 1, out);
      assert.ok(lines.indexOf(warnings[0] as (typeof lines)[number]) > listening, 'after the listening line');
      assert.equal(
        warnings[0]?.msg,
        'engine qwen-engine has no model yet: requests to default go to its fallback sim (the simulator answers meanwhile). To use a local GGUF file, set model_file to its path (the demo: PORTICO_DEMO_MODEL=/path/to/model.gguf npm start)',
      );
      assert.deepEqual(
        lines.filter((l) => l.level >= 50),
        [],
        'no error-level line',
      );
      assert.doesNotMatch(out + err, /--model/);
      assert.match(err, /^\nPortico is listening on http:\/\/127\.0\.0\.1:\d+/);
      // And the simulator does answer.
      const url = lines[listening]?.url as string;
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-demo-first-run', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hello' }] }),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
      assert.match(body.choices[0]?.message.content ?? '', /hello/, 'the echo simulator answered');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
