/**
 * Provider kind `engine`: the built-in engine in-process (no HTTP hop). The model loads in the
 * background when the backend is created; until it has loaded, and for good if loading fails
 * (missing file, offline download, corrupt GGUF), the backend reports itself unavailable so the
 * pool picks another backend. A remote `portico engine` is configured as an OpenAI-compatible
 * backend instead.
 */
import { newCompletionId } from '../lib/ids.js';
import { PorticoError, isPorticoError } from '../errors/portico-error.js';
import { isTokenPrompt, promptList, tokenPromptRefused } from '../providers/prompt.js';
import { floatsToBase64, messageText } from '../sim/generate.js';
import {
  PROVIDER_SPEC_VERSION,
  type HealthResult,
  type Provider,
  type ProviderCallContext,
  type ProviderStream,
} from '../providers/spec.js';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingRequest,
  EmbeddingResponse,
  RerankResponse,
} from '../providers/openai-types.js';
import {
  Engine,
  GENERATION_ENDED,
  type ChatMessageIn,
  type EngineOptions,
  type GenerateOptions,
  type GenerateResult,
  type OutputFormat,
} from './engine.js';
import { resolveModel, type ResolveOptions } from './resolve.js';
import { EngineStats } from './stats.js';

export interface EngineProviderOptions extends Omit<EngineOptions, 'modelPath'> {
  /** A GGUF path or `hf:owner/repo:QUANT`. */
  model: string;
  resolve?: ResolveOptions;
  /** Called once when loading succeeds or fails (the gateway logs it). */
  onLoad?: (err: Error | undefined) => void;
}

/** Somewhere to report availability: the routing pool's backend record. */
export interface AvailabilityTarget {
  healthy: boolean;
  healthReason?: string;
}

type Req = {
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
};

/** The answer length when a chat request sets no max_tokens (also the gateway's max output for the engine). */
export const ENGINE_DEFAULT_MAX_TOKENS = 512;

export function generateOptions(
  req: Req,
  signal: AbortSignal | undefined,
  fallbackMax: number,
): GenerateOptions {
  const stop = req.stop == null ? [] : Array.isArray(req.stop) ? req.stop : [req.stop];
  return {
    maxTokens: req.max_completion_tokens ?? req.max_tokens ?? fallbackMax,
    ...(req.temperature != null ? { temperature: req.temperature } : {}),
    ...(req.top_p != null ? { topP: req.top_p } : {}),
    ...(req.seed != null ? { seed: req.seed } : {}),
    stop,
    ...(signal ? { signal } : {}),
  };
}

export function chatMessages(req: ChatCompletionRequest): ChatMessageIn[] {
  return req.messages.map((m) => ({
    role: (['system', 'user', 'assistant', 'tool', 'developer'].includes(m.role)
      ? m.role
      : 'user') as ChatMessageIn['role'],
    content: messageText(m.content),
  }));
}

/** The output format a chat request asks for, for the engine's grammar (undefined: free text). */
export function outputFormatOf(req: ChatCompletionRequest): OutputFormat | undefined {
  const rf = req['response_format'] as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  if (rf?.type === 'json_object') return { type: 'json' };
  if (rf?.type === 'json_schema') {
    const schema = rf.json_schema?.schema;
    return typeof schema === 'object' && schema !== null
      ? { type: 'json_schema', schema: schema as Record<string, unknown> }
      : { type: 'json' };
  }
  return undefined;
}

/** Generation options for a chat request, with its structured-output grammar when it asks for one. */
async function chatOptions(
  e: Engine,
  req: ChatCompletionRequest,
  signal?: AbortSignal,
): Promise<GenerateOptions> {
  const opts = generateOptions(req, signal, ENGINE_DEFAULT_MAX_TOKENS);
  const format = outputFormatOf(req);
  return format ? { ...opts, grammar: await e.grammarFor(format) } : opts;
}

const usage = (p: number, c: number) => ({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c });

/**
 * Token ids are refused: the engine tokenizes text itself, and ids from another tokenizer (or out
 * of its vocabulary) would be read as other tokens, or fail inside llama.cpp.
 */
const ENGINE_TEXT_ONLY = 'The built-in engine';

/**
 * A failure inside the engine — llama.cpp failing to evaluate, a generation that ended without its
 * result — is the backend's, not a bug in the gateway: a 502 `upstream_error` of class `protocol`,
 * which the pool retries on another backend of the model and the backend's circuit breaker
 * counts, as a broken answer from an HTTP backend. (Before, it was a 500 `internal_error`: not
 * retried, not counted.) The engine's own catalog errors (max_tokens over its context, a schema
 * it cannot enforce, upstream_unavailable while loading or closing) and an abort pass as they are.
 */
export function engineFailure(backend: string, err: unknown, signal?: AbortSignal): unknown {
  if (isPorticoError(err) || signal?.aborted) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new PorticoError(
    'upstream_error',
    `engine ${backend} failed: ${why}. Retry; if it persists, check the engine's model and logs.`,
    { upstream: { backend, class: 'protocol' }, cause: err },
  );
}

/** OpenAI-shaped operations over an Engine; shared by the in-process provider and `portico engine`. */
export class EngineApi {
  /** `backend`: the name engine failures carry (the backend id in the gateway). */
  constructor(
    readonly engine: () => Promise<Engine>,
    readonly backend = 'engine',
  ) {}

  async chat(req: ChatCompletionRequest, signal?: AbortSignal): Promise<ChatCompletionResponse> {
    try {
      const e = await this.engine();
      const r = await e.complete(e.chatTokens(chatMessages(req)), await chatOptions(e, req, signal));
      return {
        id: newCompletionId(),
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: req.model,
        choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finish }],
        usage: usage(r.promptTokens, r.completionTokens),
      };
    } catch (err) {
      throw engineFailure(this.backend, err, signal);
    }
  }

  async chatStream(
    req: ChatCompletionRequest,
    signal?: AbortSignal,
  ): Promise<AsyncGenerator<ChatCompletionChunk>> {
    try {
      return await this.#chatStream(req, signal);
    } catch (err) {
      throw engineFailure(this.backend, err, signal);
    }
  }

  async #chatStream(
    req: ChatCompletionRequest,
    signal?: AbortSignal,
  ): Promise<AsyncGenerator<ChatCompletionChunk>> {
    const e = await this.engine();
    const tokens = e.chatTokens(chatMessages(req));
    const id = newCompletionId();
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = req.stream_options?.include_usage === true;
    const chunk = (
      delta: ChatCompletionChunk['choices'][0]['delta'],
      finish: 'stop' | 'length' | null = null,
    ) =>
      ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: req.model,
        choices: [{ index: 0, delta, finish_reason: finish }],
      }) as ChatCompletionChunk;
    const gen = e.generate(tokens, await chatOptions(e, req, signal));
    const backend = this.backend;
    return (async function* () {
      let done = false;
      let started = false;
      try {
        for await (const ev of gen) {
          // The role chunk goes out with the generation's first event, not before it: a generation
          // that fails before its first token fails the stream's first chunk, which dispatch still
          // retries on another backend (and the client's time to first token is the token's).
          if (!started) {
            started = true;
            yield chunk({ role: 'assistant', content: '' });
          }
          if (ev.type === 'text') yield chunk({ content: ev.text });
          else {
            done = true;
            yield chunk({}, ev.result.finish);
            if (includeUsage)
              yield {
                id,
                object: 'chat.completion.chunk',
                created,
                model: req.model,
                choices: [],
                usage: usage(ev.result.promptTokens, ev.result.completionTokens),
              } as ChatCompletionChunk;
          }
        }
        // Not a complete answer: without this, the stream ended as if it were (no finish_reason).
        if (!done) throw new Error(GENERATION_ENDED);
      } catch (err) {
        throw engineFailure(backend, err, signal);
      }
    })();
  }

  async completion(req: CompletionRequest, signal?: AbortSignal): Promise<CompletionResponse> {
    if (isTokenPrompt(req.prompt)) throw tokenPromptRefused(ENGINE_TEXT_ONLY);
    const prompts = promptList(req.prompt);
    let results: GenerateResult[];
    try {
      const e = await this.engine();
      results = await Promise.all(
        prompts.map((p) => e.complete(e.textTokens(String(p)), generateOptions(req, signal, 16))),
      );
    } catch (err) {
      throw engineFailure(this.backend, err, signal);
    }
    return {
      id: newCompletionId('cmpl'),
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: req.model,
      choices: results.map((r, index) => ({ index, text: r.text, finish_reason: r.finish })),
      usage: usage(
        results.reduce((s, r) => s + r.promptTokens, 0),
        results.reduce((s, r) => s + r.completionTokens, 0),
      ),
    };
  }

  async completionStream(
    req: CompletionRequest,
    signal?: AbortSignal,
  ): Promise<AsyncGenerator<CompletionChunk>> {
    if (isTokenPrompt(req.prompt)) throw tokenPromptRefused(ENGINE_TEXT_ONLY);
    try {
      return await this.#completionStream(req, signal);
    } catch (err) {
      throw engineFailure(this.backend, err, signal);
    }
  }

  async #completionStream(
    req: CompletionRequest,
    signal?: AbortSignal,
  ): Promise<AsyncGenerator<CompletionChunk>> {
    const e = await this.engine();
    const prompt = String(promptList(req.prompt)[0] ?? '');
    const id = newCompletionId('cmpl');
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = req.stream_options?.include_usage === true;
    const gen = e.generate(e.textTokens(prompt), generateOptions(req, signal, 16));
    const model = req.model;
    const backend = this.backend;
    return (async function* () {
      let done = false;
      try {
        for await (const ev of gen) {
          if (ev.type === 'text')
            yield {
              id,
              object: 'text_completion',
              created,
              model,
              choices: [{ index: 0, text: ev.text, finish_reason: null }],
            } as CompletionChunk;
          else {
            done = true;
            yield {
              id,
              object: 'text_completion',
              created,
              model,
              choices: [{ index: 0, text: '', finish_reason: ev.result.finish }],
            } as CompletionChunk;
            if (includeUsage)
              yield {
                id,
                object: 'text_completion',
                created,
                model,
                choices: [],
                usage: usage(ev.result.promptTokens, ev.result.completionTokens),
              } as CompletionChunk;
          }
        }
        if (!done) throw new Error(GENERATION_ENDED);
      } catch (err) {
        throw engineFailure(backend, err, signal);
      }
    })();
  }

  async embeddings(req: EmbeddingRequest): Promise<EmbeddingResponse> {
    const e = await this.engine();
    const inputs = Array.isArray(req.input) ? req.input : [req.input];
    let tokens = 0;
    const data: EmbeddingResponse['data'] = [];
    for (const [index, input] of inputs.entries()) {
      if (typeof input !== 'string')
        throw new PorticoError('invalid_request', 'the engine embeds text inputs only', { param: 'input' });
      const r = await e.embed(input).catch((err: unknown) => {
        throw engineFailure(this.backend, err);
      });
      tokens += r.tokens;
      const v = req.dimensions ? r.vector.slice(0, req.dimensions) : r.vector;
      data.push({
        object: 'embedding',
        index,
        embedding: req.encoding_format === 'base64' ? floatsToBase64(v) : v,
      });
    }
    return { object: 'list', data, model: req.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
  }
}

export class EngineProvider implements Provider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly kind = 'engine';
  readonly id: string;
  readonly api: EngineApi;
  #ready: Promise<Engine>;
  #engine: Engine | undefined;
  #error: Error | undefined;
  #target: AvailabilityTarget | undefined;
  /** Model download progress while an `hf:` model is fetched on first use. */
  #download: { done: number; total: number } | undefined;

  constructor(id: string, opts: EngineProviderOptions) {
    this.id = id;
    const { model, resolve, onLoad, ...engineOpts } = opts;
    const stats = engineOpts.metrics ? new EngineStats(engineOpts.metrics) : undefined;
    let lastReport = 0;
    const onProgress = (done: number, total: number): void => {
      resolve?.onProgress?.(done, total);
      stats?.download(done, total);
      this.#download = { done, total };
      // The backend record (console, /admin/backends) shows the progress; at most once a second.
      const now = Date.now();
      if (now - lastReport >= 1000 || done >= total) {
        lastReport = now;
        this.#report();
      }
    };
    this.#ready = (async () => {
      const modelPath = await resolveModel(model, { ...resolve, onProgress });
      return Engine.load({ ...engineOpts, modelPath });
    })();
    this.#ready.then(
      (e) => {
        this.#engine = e;
        this.#report();
        onLoad?.(undefined);
      },
      (err: unknown) => {
        this.#error = err instanceof Error ? err : new Error(String(err));
        this.#report();
        onLoad?.(this.#error);
      },
    );
    // In the gateway a request never waits for a model that is still loading (a download can take
    // minutes): it fails over at once, like any unavailable backend.
    this.api = new EngineApi(
      () =>
        this.#engine
          ? Promise.resolve(this.#engine)
          : Promise.reject(
              new PorticoError(
                'upstream_unavailable',
                this.#error
                  ? `engine ${this.id} is unavailable: ${this.#error.message}`
                  : `engine ${this.id} is still loading its model`,
              ),
            ),
      id,
    );
  }

  /** The engine once loaded; rejects with upstream_unavailable when loading failed. */
  async ready(): Promise<Engine> {
    try {
      return await this.#ready;
    } catch (err) {
      throw new PorticoError(
        'upstream_unavailable',
        `engine ${this.id} is unavailable: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  get available(): boolean {
    return this.#engine !== undefined;
  }
  get loadError(): Error | undefined {
    return this.#error;
  }

  /** Mirror availability onto the pool's backend record (replaces an earlier one after a reload). */
  attach(target: AvailabilityTarget): void {
    this.#target = target;
    this.#report();
  }

  #report(): void {
    if (!this.#target) return;
    this.#target.healthy = this.available;
    if (this.#error) this.#target.healthReason = `engine failed to load: ${this.#error.message}`;
    else if (!this.#engine && this.#download && this.#download.done < this.#download.total) {
      const { done, total } = this.#download;
      const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
      this.#target.healthReason = `engine downloading its model: ${Math.floor((done / total) * 100)}% (${mib(done)} of ${mib(total)} MiB)`;
    } else if (!this.#engine) this.#target.healthReason = 'engine loading';
    else delete this.#target.healthReason;
  }

  chat(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<ChatCompletionResponse> {
    return this.api.chat(req, ctx.signal);
  }
  chatStream(
    req: ChatCompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<ChatCompletionChunk>> {
    return this.api.chatStream(req, ctx.signal);
  }
  completion(req: CompletionRequest, ctx: ProviderCallContext): Promise<CompletionResponse> {
    return this.api.completion(req, ctx.signal);
  }
  completionStream(
    req: CompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<CompletionChunk>> {
    return this.api.completionStream(req, ctx.signal);
  }
  embeddings(req: EmbeddingRequest): Promise<EmbeddingResponse> {
    return this.api.embeddings(req);
  }
  readonly canRerank = false;
  rerank(): Promise<RerankResponse> {
    return Promise.reject(
      new PorticoError(
        'unsupported_operation',
        `Backend ${this.id} (the built-in engine) does not serve rerank.`,
      ),
    );
  }
  async health(): Promise<HealthResult> {
    return this.#engine
      ? { ok: true, latencyMs: 0 }
      : { ok: false, latencyMs: 0, detail: this.#error?.message ?? 'loading' };
  }
  async close(): Promise<void> {
    const e = await this.#ready.catch(() => undefined);
    await e?.close();
  }
}
