/**
 * `portico engine`: the built-in engine over HTTP. The seed's API (GET /health, GET /models,
 * POST /infer {prompt, system_prompt, max_tokens}), the OpenAI API (/v1/chat/completions streaming
 * and not, /v1/completions, /v1/embeddings, /v1/models) and /metrics (vLLM-like names).
 * A client that goes away cancels its generation and frees the sequence.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { PorticoError } from '../errors/portico-error.js';
import { toPorticoError } from '../http/errors.js';
import { SSE_DONE } from '../lib/sse.js';
import {
  validateChatRequest,
  validateCompletionRequest,
  validateEmbeddingRequest,
} from '../pipeline/validate.js';
import type { Engine } from './engine.js';
import { EngineApi, engineFailure } from './provider.js';

const InferSchema = z.object({
  prompt: z.string().min(1),
  system_prompt: z.string().optional(),
  max_tokens: z.number().int().min(1).max(32_768).default(256),
  temperature: z.number().min(0).max(2).optional(),
  seed: z.number().int().optional(),
});

async function writeStream(reply: FastifyReply, chunks: AsyncIterable<unknown>): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  try {
    for await (const c of chunks) {
      if (res.destroyed) return;
      res.write(`data: ${JSON.stringify(c)}\n\n`);
    }
    res.end(SSE_DONE);
  } catch (err) {
    if (!res.destroyed) res.end(`data: ${JSON.stringify(toPorticoError(err).toBody())}\n\n`);
  }
}

export function buildEngineServer(engine: Engine, opts: { modelId?: string } = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024, keepAliveTimeout: 72_000 });
  const modelId = opts.modelId ?? engine.modelName;
  const api = new EngineApi(() => Promise.resolve(engine), modelId);
  const signalFor = (reply: FastifyReply): AbortSignal => {
    const controller = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished)
        controller.abort(new PorticoError('client_closed_request', 'client went away'));
    });
    return controller.signal;
  };

  app.setErrorHandler((err, _req, reply) => {
    const pe = toPorticoError(err);
    reply.code(pe.status).send(pe.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send(new PorticoError('not_found', `engine: no endpoint ${req.method} ${req.url}`).toBody());
  });

  app.get('/health', async () => ({
    status: 'ok',
    model: modelId,
    running: engine.running,
    waiting: engine.waiting,
    sequences: engine.sequences,
    threads: engine.threads,
  }));
  const modelInfo = () => ({
    id: modelId,
    object: 'model',
    created: 0,
    owned_by: 'portico-engine',
    architecture: engine.summary.architecture,
    file: engine.modelPath.split(/[\\/]/).pop(),
    size_bytes: engine.summary.fileSize,
  });
  app.get('/models', async () => ({ models: [modelInfo()] }));
  app.get('/v1/models', async () => ({ object: 'list', data: [modelInfo()] }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', engine.stats.registry.contentType);
    return engine.stats.registry.metrics();
  });

  app.post('/infer', async (req, reply) => {
    const parsed = InferSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new PorticoError(
        'invalid_request',
        `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`,
      );
    }
    const b = parsed.data;
    const started = performance.now();
    const messages = [
      ...(b.system_prompt ? [{ role: 'system' as const, content: b.system_prompt }] : []),
      { role: 'user' as const, content: b.prompt },
    ];
    const signal = signalFor(reply);
    const r = await engine
      .complete(engine.chatTokens(messages), {
        maxTokens: b.max_tokens,
        ...(b.temperature !== undefined ? { temperature: b.temperature } : {}),
        ...(b.seed !== undefined ? { seed: b.seed } : {}),
        signal,
      })
      .catch((err: unknown) => {
        throw engineFailure(modelId, err, signal);
      });
    return {
      response: r.text,
      model: modelId,
      prompt_tokens: r.promptTokens,
      tokens_generated: r.completionTokens,
      finish_reason: r.finish,
      time_seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    };
  });
  app.post('/v1/chat/completions', async (req, reply) => {
    const body = validateChatRequest(req.body);
    if (body.stream) return writeStream(reply, await api.chatStream(body, signalFor(reply)));
    return api.chat(body, signalFor(reply));
  });
  app.post('/v1/completions', async (req, reply) => {
    const body = validateCompletionRequest(req.body);
    if (body.stream) return writeStream(reply, await api.completionStream(body, signalFor(reply)));
    return api.completion(body, signalFor(reply));
  });
  app.post('/v1/embeddings', async (req) => api.embeddings(validateEmbeddingRequest(req.body)));
  app.addHook('onClose', async () => engine.close());
  return app;
}
