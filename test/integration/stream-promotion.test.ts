/**
 * Pass-through streams must not outlive their request in the V8 heap. Until 2026-12-07 every
 * stream's upstream objects (handler, read buffers, closures) survived two scavenges and were
 * promoted to the old generation — ~3.5 KB per stream against ~0.1 KB for a bare proxy — where
 * they stayed, dead, until a mark-compact: most of the gateway's RSS under streaming load
 * (bench/pipeline-report.md, Session 8). This runs `portico start` with `--trace-gc-nvp` against a
 * node:http upstream that sends 20 chunks per stream, one write per event-loop turn, and counts
 * what the scavenger promotes per stream. Not a timing: what the young generation keeps does not
 * depend on the machine's speed (3.2–3.8 KB per stream before the fix at c=8 and c=64 alike,
 * 0.3–0.6 KB after).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { freePort } from '../support/processes.js';

const KEY = 'sk-promotion-test';
const CHUNKS = 20;
/** Per-stream promotion above this fails: ~6× the figure after the fix, half the one before. */
const MAX_PROMOTED_PER_STREAM = 1_500;

function mockUpstream(): Server {
  let seq = 0;
  return createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const id = `chatcmpl-${++seq}`;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const next = (): void => {
        if (res.destroyed) return;
        if (i < CHUNKS) {
          res.write(
            `data: {"id":"${id}","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":${i === CHUNKS - 1 ? '"stop"' : 'null'}}]}\n\n`,
          );
          i++;
          setImmediate(next);
          return;
        }
        res.write(
          `data: {"id":"${id}","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":${CHUNKS},"total_tokens":${5 + CHUNKS}}}\n\n`,
        );
        res.end('data: [DONE]\n\n');
      };
      next();
    });
  });
}

describe('pass-through streams and the V8 heap', () => {
  let dir: string;
  let upstream: Server;
  let gateway: ChildProcess;
  let origin: string;
  const gc = { scavenges: 0, promoted: 0 };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-promotion-'));
    upstream = mockUpstream();
    const upPort = await freePort();
    await new Promise<void>((r) => upstream.listen(upPort, '127.0.0.1', r));
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    const config = join(dir, 'portico.yaml');
    await writeFile(
      config,
      [
        `server: { host: 127.0.0.1, port: ${port} }`,
        'logging: { level: warn }',
        'admin: { console: false, token: promotion-admin }',
        `state: { kind: embedded, data_dir: "${join(dir, 'data')}" }`,
        'cache: { enabled: false }',
        'tenants:',
        '  - id: t',
        '    prompt_policy: none',
        `    api_keys: [{ value: ${KEY} }]`,
        'models:',
        '  m:',
        `    backends: [{ id: up, provider: openai, base_url: "http://127.0.0.1:${upPort}/v1", model: m }]`,
        '',
      ].join('\n'),
    );
    gateway = spawn(
      process.execPath,
      ['--trace-gc-nvp', '--import', 'tsx', 'src/main.ts', 'start', '--config', config],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let rest = '';
    gateway.stdout?.setEncoding('utf8');
    gateway.stdout?.on('data', (d: string) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines)
        if (/\bgc=s\b/.test(line)) {
          gc.scavenges++;
          gc.promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
        }
    });
    let err = '';
    gateway.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const until = Date.now() + 60_000;
    for (;;) {
      if (err.includes(`is listening on ${origin}`)) break;
      if (gateway.exitCode !== null || Date.now() > until) throw new Error(`gateway did not start:\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway.once('exit', r));
      gateway.kill('SIGTERM');
      await exited;
    }
    await new Promise<void>((r) => upstream.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  async function streams(count: number, concurrency: number): Promise<number> {
    const pool = new Pool(origin, { connections: concurrency });
    const body = JSON.stringify({
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Say twenty words.' }],
    });
    let done = 0;
    let issued = 0;
    const worker = async (): Promise<void> => {
      while (issued < count) {
        issued++;
        const res = await pool.request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
          body,
        });
        const text = await res.body.text();
        assert.equal(res.statusCode, 200, text);
        assert.ok(text.endsWith('data: [DONE]\n\n'), 'every stream completes');
        done++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await pool.close();
    return done;
  }

  it(`promotes under ${MAX_PROMOTED_PER_STREAM} bytes per stream to the old generation`, async (t) => {
    await streams(600, 8); // warm-up: JIT, connections, start-up garbage
    const before = { ...gc };
    const n = await streams(3_000, 8);
    const scavenges = gc.scavenges - before.scavenges;
    const perStream = (gc.promoted - before.promoted) / n;
    t.diagnostic(`${Math.round(perStream)} bytes promoted per stream (${n} streams, ${scavenges} scavenges)`);
    assert.ok(scavenges >= 3, `the load ran ${scavenges} scavenges: too few to measure promotion`);
    assert.ok(
      perStream < MAX_PROMOTED_PER_STREAM,
      `${Math.round(perStream)} bytes promoted per stream over ${n} streams and ${scavenges} scavenges (limit ${MAX_PROMOTED_PER_STREAM})`,
    );
  });
});
