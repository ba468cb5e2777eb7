/**
 * The built-in engine on a generated tiny GGUF (no download): its output is the fixed cycle
 * "red green blue ...", so answers are checked exactly. One engine server is shared by most tests
 * (threads 1, small contexts) to keep the suite fast.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, copyFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import { writeTinyModel, tinyExpectedText } from '../../src/engine/gguf/tiny-model.js';
import { Engine, type GenerateEvent } from '../../src/engine/engine.js';
import { buildEngineServer } from '../../src/engine/server.js';
import { GgufError, validateGguf } from '../../src/engine/gguf/validate.js';
import { resolveModel } from '../../src/engine/resolve.js';

let dir: string;
let modelPath: string;
let engine: Engine;
let app: FastifyInstance;
let url: string;
let client: OpenAI;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portico-engine-'));
  modelPath = join(dir, 'tiny.gguf');
  await writeTinyModel(modelPath);
  engine = await Engine.load({ modelPath, threads: 1, sequences: 4, contextPerSequence: 256, gpu: false });
  app = buildEngineServer(engine, { modelId: 'tiny' });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

async function untilIdle(e: Engine): Promise<void> {
  for (let i = 0; i < 200 && e.running > 0; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('engine server', () => {
  it('loads the model: /health and /models', async () => {
    const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
    assert.equal(health.status, 'ok');
    assert.equal(health.sequences, 4);
    assert.equal(health.threads, 1);
    const models = (await (await fetch(`${url}/models`)).json()) as {
      models: { id: string; architecture: string }[];
    };
    assert.equal(models.models[0]?.id, 'tiny');
    assert.equal(models.models[0]?.architecture, 'llama');
  });

  it('chat answers with the exact expected text, through the chat template', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'name some colours' },
      ],
      max_tokens: 5,
    });
    assert.equal(r.choices[0]?.message.content, tinyExpectedText(5));
    assert.equal(r.choices[0]?.finish_reason, 'length');
    assert.equal(r.usage?.completion_tokens, 5);
    assert.ok((r.usage?.prompt_tokens ?? 0) > 20, 'the template wraps the messages');
  });

  it('streaming equals non-streaming', async () => {
    const req = {
      model: 'tiny',
      messages: [{ role: 'user' as const, content: 'hello' }],
      max_tokens: 8,
      seed: 42,
      temperature: 0.7,
    };
    const whole = await client.chat.completions.create(req);
    const stream = await client.chat.completions.create({
      ...req,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null | undefined;
    let usage: number | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage.completion_tokens;
    }
    assert.equal(text, whole.choices[0]?.message.content);
    assert.equal(finish, 'length');
    assert.equal(usage, 8);
  });

  it('4 concurrent requests are all correct', async () => {
    const answers = await Promise.all(
      [3, 4, 5, 6].map((n) =>
        client.chat.completions.create({
          model: 'tiny',
          messages: [{ role: 'user', content: `q${n}` }],
          max_tokens: n,
        }),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.choices[0]?.message.content),
      [3, 4, 5, 6].map((n) => tinyExpectedText(n)),
    );
  });

  it('stop sequences end the answer before the stop text', async () => {
    const r = await client.completions.create({
      model: 'tiny',
      prompt: 'colours:',
      max_tokens: 10,
      stop: [' blue'],
    });
    assert.equal(r.choices[0]?.text, 'red green');
    assert.equal(r.choices[0]?.finish_reason, 'stop');
  });

  it('response_format json_schema is enforced with a grammar (the tiny model alone says "red green blue")', async () => {
    const schema = {
      type: 'object',
      properties: { color: { enum: ['red', 'green', 'blue'] }, ok: { type: 'boolean' } },
      required: ['color', 'ok'],
      additionalProperties: false,
    };
    const ask = (stream: boolean) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'tiny',
          messages: [{ role: 'user', content: 'Pick a color.' }],
          max_tokens: 48,
          response_format: { type: 'json_schema', json_schema: { name: 'pick', schema } },
          stream,
        }),
      });
    const r = (await (await ask(false)).json()) as { choices: Array<{ message: { content: string } }> };
    const value = JSON.parse(r.choices[0]?.message.content ?? '') as { color: string; ok: boolean };
    assert.ok(['red', 'green', 'blue'].includes(value.color));
    assert.equal(typeof value.ok, 'boolean');
    assert.deepEqual(Object.keys(value).sort(), ['color', 'ok']);
    const sse = await (await ask(true)).text();
    const streamed = sse
      .split('\n\n')
      .filter((l) => l.startsWith('data: {'))
      .map(
        (l) =>
          (JSON.parse(l.slice(6)) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta
            .content ?? '',
      )
      .join('');
    assert.deepEqual(JSON.parse(streamed), value);
  });

  it('a schema the grammar cannot take is a 400 naming it', async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 8,
        response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'nonsense' } } },
      }),
    });
    assert.equal(res.status, 400);
    const e = (await res.json()) as { error: { param: string } };
    assert.equal(e.error.param, 'response_format.json_schema.schema');
  });

  it('cancellation stops decoding and frees the sequence', async () => {
    const controller = new AbortController();
    const gen = engine.generate(engine.textTokens('go on'), { maxTokens: 200, signal: controller.signal });
    let pieces = 0;
    await assert.rejects(async () => {
      for await (const ev of gen)
        if (ev.type === 'text' && ++pieces === 3) controller.abort(new Error('client went away'));
    }, /client went away/);
    assert.equal(pieces, 3);
    assert.equal(engine.running, 0);
    // over HTTP: a streaming client that disconnects early leaves no sequence behind
    const abort = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'tiny', messages: [{ role: 'user', content: 'go on' }], max_tokens: 200, stream: true },
      { signal: abort.signal },
    );
    for await (const _ of stream) {
      abort.abort();
      break;
    }
    await untilIdle(engine);
    assert.equal(engine.running, 0);
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 2,
    });
    assert.equal(r.choices[0]?.message.content, tinyExpectedText(2));
  });

  it('embeddings', async () => {
    const r = await client.embeddings.create({ model: 'tiny', input: ['hello', 'world'] });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0]?.embedding.length, 64);
    assert.notDeepEqual(r.data[0]?.embedding, r.data[1]?.embedding);
    assert.ok((r.usage.prompt_tokens ?? 0) > 0);
  });

  it('/infer with the seed request shape', async () => {
    const res = await fetch(`${url}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: 'Your question here',
        system_prompt: 'Custom system instructions',
        max_tokens: 4,
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { response: string; tokens_generated: number; model: string };
    assert.equal(body.response, tinyExpectedText(4));
    assert.equal(body.tokens_generated, 4);
    const bad = await fetch(`${url}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(bad.status, 400);
  });

  it('a generation that ends without a result is a 502 upstream_error, not a 500 (a gateway in front retries it)', async (t) => {
    t.mock.method(engine, 'generate', async function* (): AsyncGenerator<GenerateEvent> {});
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const [path, body] of [
      ['/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }],
      ['/v1/completions', { model: 'tiny', prompt: 'hi', max_tokens: 4 }],
      ['/infer', { prompt: 'hi', max_tokens: 4 }],
    ] as const) {
      const res = await post(path, body);
      const text = await res.text();
      assert.equal(res.status, 502, `${path}: ${text}`);
      assert.deepEqual(JSON.parse(text), {
        error: {
          message:
            "engine tiny failed: generation ended without a result. Retry; if it persists, check the engine's model and logs.",
          type: 'api_error',
          param: null,
          code: 'upstream_error',
        },
      });
    }
    const streamed = await (
      await post('/v1/completions', { model: 'tiny', prompt: 'hi', max_tokens: 4, stream: true })
    ).text();
    assert.match(streamed, /"code":"upstream_error"/, streamed);
    assert.doesNotMatch(streamed, /\[DONE\]/);
  });

  it('/metrics uses vLLM-like names', async () => {
    const m = await (await fetch(`${url}/metrics`)).text();
    for (const name of [
      'portico_engine_num_requests_running',
      'portico_engine_num_requests_waiting',
      'portico_engine_time_to_first_token_seconds_bucket',
      'portico_engine_inter_token_latency_seconds_bucket',
      'portico_engine_prompt_tokens_total',
      'portico_engine_generation_tokens_total',
    ])
      assert.match(m, new RegExp(`^${name}`, 'm'), name);
  });
});

describe('engine scheduling', () => {
  it('a request waiting for a sequence past the queue timeout gets a clear error', async () => {
    const e = await Engine.load({
      modelPath,
      threads: 1,
      sequences: 1,
      contextPerSequence: 128,
      queueTimeoutMs: 150,
      gpu: false,
    });
    try {
      const holder = e.generate(e.textTokens('hold'), { maxTokens: 50 });
      await holder.next(); // holds the only sequence
      assert.equal(e.running, 1);
      await assert.rejects(e.complete(e.textTokens('wait'), { maxTokens: 2 }), /queue timeout/);
      await holder.return(undefined);
      assert.equal(e.running, 0);
      assert.equal((await e.complete(e.textTokens('now'), { maxTokens: 3 })).text, tinyExpectedText(3));
    } finally {
      await e.close();
    }
  });
});

describe('model files', () => {
  it('corrupt files give a clear error and the process stays up', async () => {
    const good = await readFile(modelPath);
    const cases: [string, Buffer, RegExp][] = [
      ['magic', Buffer.concat([Buffer.from('NOPE'), good.subarray(4)]), /bad magic/],
      ['truncated', good.subarray(0, Math.floor(good.length / 2)), /truncated/],
      [
        'huge-count',
        (() => {
          const b = Buffer.from(good);
          b.writeBigUInt64LE(2n ** 60n, 16);
          return b;
        })(),
        /implausible|too large/,
      ],
      ['tiny', Buffer.from('GGUF'), /only 4 bytes/],
    ];
    for (const [name, bytes, re] of cases) {
      const p = join(dir, `corrupt-${name}.gguf`);
      await writeFile(p, bytes);
      await assert.rejects(
        Engine.load({ modelPath: p, threads: 1, sequences: 1, contextPerSequence: 128, gpu: false }),
        (err: unknown) => {
          assert.ok(err instanceof GgufError, `${name}: ${String(err)}`);
          assert.match(err.message, re);
          return true;
        },
      );
    }
    assert.equal((await validateGguf(modelPath)).architecture, 'llama');
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
  });

  it('an hf: reference already in the cache resolves with no network', async () => {
    const cacheDir = join(dir, 'cache');
    await rm(cacheDir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(cacheDir));
    await copyFile(modelPath, join(cacheDir, 'qwen2.5-0.5b-instruct-q4_k_m.gguf'));
    const p = await resolveModel('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', {
      cacheDir,
      endpoint: 'http://127.0.0.1:9', // nothing listens: any network use would fail
    });
    assert.equal(p, join(cacheDir, 'qwen2.5-0.5b-instruct-q4_k_m.gguf'));
  });

  it('offline: an uncached hf: reference fails fast with a clear message', async () => {
    const cacheDir = join(dir, 'empty-cache');
    const started = Date.now();
    await assert.rejects(
      resolveModel('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', { cacheDir, endpoint: 'http://127.0.0.1:9' }),
      /cannot download hf:Qwen\/Qwen2\.5-0\.5B-Instruct-GGUF:Q4_K_M: .*not reachable \(.*\) \(offline\?\)/,
    );
    assert.ok(Date.now() - started < 5000);
    // a hub that accepts connections but never answers is cut off by the timeout
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      await assert.rejects(
        resolveModel('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', {
          cacheDir,
          endpoint: `http://127.0.0.1:${port}`,
          timeoutMs: 300,
        }),
        /not reachable within 300 ms/,
      );
    } finally {
      silent.close();
    }
  });
});
