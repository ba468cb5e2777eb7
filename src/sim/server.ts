/**
 * `portico sim`: the simulator over HTTP, speaking the OpenAI API (and what vLLM adds: /v1/rerank,
 * /health). Its latency model can be changed at runtime with PATCH /sim/config, for drills.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { PorticoError } from '../errors/portico-error.js';
import { toPorticoError } from '../http/errors.js';
import { SSE_DONE } from '../lib/sse.js';
import {
  validateChatRequest,
  validateCompletionRequest,
  validateEmbeddingRequest,
  validateRerankRequest,
} from '../pipeline/validate.js';
import type { ProviderCallContext } from '../providers/spec.js';
import {
  SimFaultsSchema,
  SimOptionsSchema,
  type SimFaults,
  type SimOptions,
  type SimOptionsInput,
} from '../config/schema.js';
import { formatPath } from '../config/load.js';
import { Simulator } from './simulator.js';
import { simMetrics } from './metrics.js';
import { SimDisconnect, SimMalformed } from './faults.js';

export interface SimServerOptions {
  sim?: SimOptionsInput;
  models?: string[];
  /** How many received requests to remember (for tests and drills): method, path, headers, body. */
  recordRequests?: number;
  /** Modelled KV-cache capacity in tokens behind vllm:gpu_cache_usage_perc (default 16,384). */
  kvCacheTokens?: number;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

async function writeStream(reply: FastifyReply, chunks: AsyncIterable<unknown>): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  try {
    for await (const c of chunks) {
      if (res.destroyed) return;
      if (!res.write(`data: ${JSON.stringify(c)}\n\n`))
        await new Promise<void>((r) => {
          res.once('drain', r);
          res.once('close', r);
        });
    }
    res.end(SSE_DONE);
  } catch (err) {
    if (res.destroyed) return;
    // Injected faults become real wire faults: a cut socket, a broken event.
    if (err instanceof SimDisconnect) res.destroy();
    else if (err instanceof SimMalformed) res.end('data: {"id": "broken", "choices": [\n\n');
    else res.end(`data: ${JSON.stringify(toPorticoError(err).toBody())}\n\n`);
  }
}

export function buildSimServer(opts: SimServerOptions = {}): {
  app: FastifyInstance;
  sim: Simulator;
  received: ReceivedRequest[];
} {
  const sim = new Simulator('sim', opts.sim ?? {});
  const models = opts.models ?? ['sim'];
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024, keepAliveTimeout: 72_000 });
  const received: ReceivedRequest[] = [];
  const keep = opts.recordRequests ?? 0;
  if (keep > 0) {
    app.addHook('preHandler', (req, _reply, done) => {
      received.push({ method: req.method, path: req.url, headers: req.headers, body: req.body });
      if (received.length > keep) received.shift();
      done();
    });
  }

  const callCtx = (reply: FastifyReply): ProviderCallContext => {
    const controller = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    return { signal: controller.signal, requestId: '', correlationId: '' };
  };

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof SimMalformed) {
      reply.code(200).header('content-type', 'application/json').send('{"id": "broken", "choices": [');
      return;
    }
    const pe = toPorticoError(err);
    const status = pe.upstream?.status ?? pe.status;
    reply.code(status).headers(pe.headers).send(pe.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send(new PorticoError('not_found', `simulator: no endpoint ${req.method} ${req.url}`).toBody());
  });

  app.get('/health', async () => ({ status: 'ok', running: sim.running, served: sim.served }));
  // vLLM-style metrics (vllm:*, labelled with the first model name), for the portico-sim scrape job.
  const registry = simMetrics(sim, {
    modelName: models[0] ?? 'sim',
    ...(opts.kvCacheTokens !== undefined ? { kvCacheTokens: opts.kvCacheTokens } : {}),
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  app.get('/v1/models', async () => ({
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'portico-sim' })),
  }));
  app.post('/v1/chat/completions', async (req, reply) => {
    const body = validateChatRequest(req.body);
    if (body.stream) return writeStream(reply, await sim.chatStream(body, callCtx(reply)));
    return sim.chat(body, callCtx(reply));
  });
  app.post('/v1/completions', async (req, reply) => {
    const body = validateCompletionRequest(req.body);
    if (body.stream) return writeStream(reply, await sim.completionStream(body, callCtx(reply)));
    return sim.completion(body, callCtx(reply));
  });
  app.post('/v1/embeddings', async (req, reply) =>
    sim.embeddings(validateEmbeddingRequest(req.body), callCtx(reply)),
  );
  app.post('/v1/rerank', async (req, reply) => sim.rerank(validateRerankRequest(req.body), callCtx(reply)));

  // GET shows the effective settings: `faults` always (every fault off on a simulator without
  // any), so that what GET returns can be PATCHed back as it was.
  app.get('/sim/config', async () => shownOptions(sim.options));
  // A JSON merge patch (RFC 7396) onto the current settings: what the patch does not name is kept
  // (nested objects such as `faults` too), null removes a setting (its default again; `"faults":
  // null` switches every fault off); the merged result is validated as a whole and replaces the
  // settings.
  app.patch('/sim/config', async (req) => {
    const patch = req.body ?? {};
    if (!isPlainObject(patch)) throw new PorticoError('invalid_request', 'Send a JSON object of settings.');
    const parsed = SimOptionsSchema.safeParse(mergePatch(shownOptions(sim.options), patch));
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new PorticoError(
        'invalid_request',
        `${formatPath(first?.path ?? [])}: ${first?.message ?? 'invalid'}`,
        { param: formatPath(first?.path ?? []) },
      );
    }
    return shownOptions(sim.replaceOptions(parsed.data));
  });
  return { app, sim, received };
}

const NO_FAULTS: SimFaults = SimFaultsSchema.parse({});

/** The settings as /sim/config shows them: with `faults` (all off) when none are set. */
function shownOptions(o: SimOptions): SimOptions {
  return { ...o, faults: o.faults ?? NO_FAULTS };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7396 JSON merge patch: objects merge key by key, null removes a key, anything else replaces. */
export function mergePatch(target: unknown, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isPlainObject(v)) out[k] = mergePatch(out[k], v);
    else out[k] = v;
  }
  return out;
}
