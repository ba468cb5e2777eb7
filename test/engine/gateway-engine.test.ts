/**
 * Provider kind `engine`: the gateway's /ask for both demo tenants answered by the in-process engine
 * (generated tiny model), the Responses API bridged to it, and an engine that cannot load is skipped by the pool while another
 * backend of the model is available.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyModel, tinyExpectedText } from '../../src/engine/gguf/tiny-model.js';
import { EngineProvider } from '../../src/engine/provider.js';
import type { Engine, GenerateEvent } from '../../src/engine/engine.js';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import OpenAI from 'openai';
import { Gateway } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { ACME_KEY, CLOSED_KEY, demoConfig, startTestGateway, type TestGateway } from '../support/gateway.js';

let dir: string;
let gw: TestGateway;

interface AskBody {
  tenant: string;
  answer: string;
  backend: string;
}

async function ask(key: string, question: string): Promise<{ body: AskBody; backend: string | null }> {
  const res = await fetch(`${gw.url}/ask`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ question, max_tokens: 6 }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return { body: (await res.json()) as AskBody, backend: res.headers.get('x-portico-backend') };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portico-gw-engine-'));
  await writeTinyModel(join(dir, 'tiny.gguf'));
  await writeFile(join(dir, 'broken.gguf'), 'GGUF not really');
  // ACME may use `pair` too (the failover test).
  const tenants = (demoConfig().tenants as Array<{ id: string; allowed_models: string[] }>).map((t) =>
    t.id === 'acme-corp' ? { ...t, allowed_models: [...t.allowed_models, 'pair'] } : t,
  );
  gw = await startTestGateway(
    demoConfig({
      tenants,
      models: {
        default: {
          backends: [
            {
              id: 'engine-local',
              provider: 'engine',
              model_file: join(dir, 'tiny.gguf'),
              threads: 1,
              sequences: 2,
              context_size: 256,
              gpu: 'off',
            },
          ],
          // The failing-generation test's failures (retried on this one backend) leave it closed.
          circuit: { failures: 20 },
        },
        // An engine (whose generation the test breaks) and a simulator: the pool fails over.
        pair: {
          backends: [
            {
              id: 'engine-pair',
              provider: 'engine',
              model_file: join(dir, 'tiny.gguf'),
              threads: 1,
              sequences: 1,
              context_size: 256,
              gpu: 'off',
            },
            { id: 'sim-pair', provider: 'sim', sim: { mode: 'echo' } },
          ],
          health_check: { enabled: false },
        },
        mixed: {
          backends: [
            { id: 'engine-broken', provider: 'engine', model_file: join(dir, 'broken.gguf'), gpu: 'off' },
            { id: 'sim-fallback', provider: 'sim', sim: { mode: 'echo' } },
          ],
        },
      },
    }),
  );
});

after(async () => {
  await gw?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('gateway with the in-process engine', () => {
  it('/ask for both demo tenants is answered by the engine', async () => {
    const provider = gw.gateway.snapshot.pools.get('default')?.backends[0]?.provider;
    if (provider instanceof EngineProvider) await provider.ready();
    for (const [key, tenant] of [
      [ACME_KEY, 'acme-corp'],
      [CLOSED_KEY, 'closed-ai'],
    ] as const) {
      const { body, backend } = await ask(key, 'What should we build first?');
      assert.equal(body.tenant, tenant);
      assert.equal(body.answer, tinyExpectedText(6));
      assert.equal(backend, 'engine-local');
    }
    // The in-process engine's vLLM-like series are on the gateway's own /metrics, per backend.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /^portico_engine_generation_tokens_total\{backend="engine-local"\} 12$/m);
    assert.match(metrics, /^portico_engine_prompt_tokens_total\{backend="engine-local"\} [1-9]\d*$/m);
    assert.match(metrics, /^portico_engine_num_requests_running\{backend="engine-local"\} 0$/m);
    assert.match(metrics, /^portico_engine_time_to_first_token_seconds_count\{backend="engine-local"\} 2$/m);
  });

  it('the Responses API is bridged to the engine: create and stream, usage from the engine', async () => {
    const provider = gw.gateway.snapshot.pools.get('default')?.backends[0]?.provider;
    if (provider instanceof EngineProvider) await provider.ready();
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: ACME_KEY, maxRetries: 0 });
    const r = await client.responses.create({ model: 'default', input: 'What first?', max_output_tokens: 6 });
    assert.equal(r.output_text, tinyExpectedText(6));
    assert.equal(r.usage?.output_tokens, 6);
    const stream = client.responses.stream({ model: 'default', input: 'What first?', max_output_tokens: 6 });
    let text = '';
    stream.on('response.output_text.delta', (e) => {
      text += e.delta;
    });
    const final = await stream.finalResponse();
    assert.equal(text, tinyExpectedText(6));
    assert.equal(final.output_text, text);
    assert.equal((await client.responses.retrieve(final.id)).output_text, text);
  });

  it('a generation that ends without a result is a 502 upstream_error the pool fails over from (before: a 500 internal_error)', async (t) => {
    const pool = gw.gateway.snapshot.pools;
    const engines: Engine[] = [];
    for (const alias of ['default', 'pair']) {
      const provider = pool.get(alias)?.backends[0]?.provider;
      assert.ok(provider instanceof EngineProvider);
      const engine = await provider.ready();
      // The generator ends without its final `done` event: a broken generation.
      t.mock.method(engine, 'generate', async function* (): AsyncGenerator<GenerateEvent> {});
      engines.push(engine);
    }
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${gw.baseURL}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // The engine alone: the client sees the backend's failure, OpenAI-shaped, as a 502.
    const messages = [{ role: 'user', content: 'hi' }];
    for (const [path, body] of [
      ['/chat/completions', { model: 'default', messages, max_tokens: 4 }],
      ['/completions', { model: 'default', prompt: 'hi', max_tokens: 4 }],
    ] as const) {
      const res = await post(path, body);
      const text = await res.text();
      assert.equal(res.status, 502, `${path}: ${text}`);
      const err = (JSON.parse(text) as { error: { type: string; code: string; message: string } }).error;
      assert.equal(err.type, 'api_error');
      assert.equal(err.code, 'upstream_error');
      assert.match(err.message, /engine engine-local failed: generation ended without a result/);
    }
    // Streamed, the role chunk waits for the generation's first event: a generation that fails
    // before it is the same 502, before any byte of the stream (before: the stream ended without a
    // finish_reason, as if complete; then an upstream_error event after the role chunk).
    const streamed = await post('/chat/completions', { model: 'default', messages, stream: true });
    const streamedText = await streamed.text();
    assert.equal(streamed.status, 502, streamedText);
    assert.match(streamedText, /"code":"upstream_error"/, streamedText);
    // With another backend in the pool, every request is answered, streamed or not: the engine's
    // failures are retried there.
    const pairBackend = pool.get('pair')?.backends[0];
    for (let i = 0; i < 4; i++) {
      const res = await post('/chat/completions', { model: 'pair', messages, max_tokens: 4 });
      assert.equal(res.status, 200, await res.text());
      const s = await post('/chat/completions', { model: 'pair', messages, max_tokens: 4, stream: true });
      const text = await s.text();
      assert.equal(s.status, 200, text);
      assert.doesNotMatch(text, /upstream_error/, text);
      assert.match(text, /"finish_reason":"(stop|length)"/, text);
      assert.match(text, /data: \[DONE\]/, text);
    }
    // ... and they count against the engine's backend (its circuit breaker, its last error).
    assert.match(pairBackend?.lastError ?? '', /generation ended without a result/);
  });

  it('an engine whose model cannot load is marked unavailable and the pool picks the other backend', async () => {
    const pool = gw.gateway.snapshot.pools.get('mixed');
    const broken = pool?.backends.find((b) => b.id === 'engine-broken');
    assert.ok(broken && broken.provider instanceof EngineProvider);
    await assert.rejects(broken.provider.ready(), /unavailable: invalid GGUF file/);
    assert.equal(broken.healthy, false);
    assert.match(broken.healthReason ?? '', /invalid GGUF/);
    for (let i = 0; i < 3; i++) assert.equal(pool?.pick()?.id, 'sim-fallback');
  });

  it('the gateway logs why an engine could not load, and when one has loaded', async () => {
    const lines: Array<{ msg: string; backend?: string; err?: string; level: number }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n'))
          if (l) lines.push(JSON.parse(l) as (typeof lines)[number]);
        done();
      },
    });
    const loaded = await buildConfig(
      demoConfig({
        models: {
          default: {
            backends: [
              {
                id: 'engine-ok',
                provider: 'engine',
                model_file: join(dir, 'tiny.gguf'),
                threads: 1,
                sequences: 1,
                context_size: 128,
                gpu: 'off',
              },
              { id: 'engine-bad', provider: 'engine', model_file: join(dir, 'broken.gguf'), gpu: 'off' },
            ],
          },
        },
      }),
      { env: {} },
    );
    const g = await Gateway.create(loaded, { defaultMetrics: false, logger: pino({ level: 'info' }, sink) });
    try {
      for (const b of g.snapshot.pools.get('default')?.backends ?? [])
        if (b.provider instanceof EngineProvider) await b.provider.ready().catch(() => undefined);
      const bad = lines.find((l) => l.backend === 'engine-bad');
      assert.ok(bad, 'a log line for the engine that failed');
      assert.equal(bad.level, 50);
      assert.match(bad.msg, /could not load its model/);
      assert.match(bad.err ?? '', /invalid GGUF/);
      const ok = lines.find((l) => l.backend === 'engine-ok');
      assert.equal(ok?.msg, 'engine model loaded');
    } finally {
      await g.close();
    }
  });
});
