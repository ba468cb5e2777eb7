/**
 * The built-in inference engine: one GGUF model loaded with llama.cpp (node-llama-cpp), several
 * context sequences decoding in one batch, a bounded wait queue with a timeout, cancellation by
 * AbortSignal (frees the sequence at once), chat templates from the model file, seeded sampling,
 * max tokens and stop sequences. node-llama-cpp is an optional dependency loaded only here, by
 * dynamic import, so gateway-only installs never load it.
 */
import { availableParallelism } from 'node:os';
import { PorticoError } from '../errors/portico-error.js';
import { validateGguf, type GgufSummary } from './gguf/validate.js';
import { EngineStats, type EngineStatsOptions } from './stats.js';
import { schemaProblem } from './schema-check.js';

type NLC = typeof import('node-llama-cpp');
type Llama = Awaited<ReturnType<NLC['getLlama']>>;
type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>;
type LlamaContext = Awaited<ReturnType<LlamaModel['createContext']>>;
type LlamaSequence = ReturnType<LlamaContext['getSequence']>;
type LlamaEmbeddingContext = Awaited<ReturnType<LlamaModel['createEmbeddingContext']>>;
type ChatWrapper = NonNullable<ReturnType<NLC['resolveChatWrapper']>>;
type Token = Parameters<LlamaSequence['evaluate']>[0][number];
type LlamaGrammar = Awaited<ReturnType<Llama['getGrammarFor']>>;

/** What the output must be: a JSON value/object of whatever shape (`json_object`) or JSON following a schema. */
export type OutputFormat = { type: 'json' } | { type: 'json_schema'; schema: Record<string, unknown> };

/** Compiled grammars kept per schema (compiling one costs milliseconds; requests repeat schemas). */
const GRAMMAR_CACHE_SIZE = 64;

export interface EngineOptions {
  modelPath: string;
  /** CPU threads for decoding; default: see defaultThreads(). */
  threads?: number;
  /** Concurrent sequences (requests decoded together). Default 4. */
  sequences?: number;
  /** Context tokens per sequence. Default 2048. */
  contextPerSequence?: number;
  /** Requests allowed to wait for a sequence; more are refused at once. Default 64. */
  maxQueue?: number;
  /** How long a request may wait for a sequence. Default 30 s. */
  queueTimeoutMs?: number;
  /** 'auto' uses a GPU build when one is installed; false forces CPU. Default 'auto'. */
  gpu?: 'auto' | false | 'cuda' | 'vulkan' | 'metal';
  /** Where the engine's metrics go (default: a registry of its own, label backend="engine"). */
  metrics?: EngineStatsOptions;
}

/**
 * Default threads: llama.cpp decoding is memory-bound and oversubscribing cores hurts badly
 * (4 threads on a 2-core box measured ~10x slower than 1), so use the available cores, capped at 4.
 */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export interface ChatMessageIn {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string;
}

export interface GenerateOptions {
  maxTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Keep generating past end-of-sequence tokens (benchmarks; vLLM's ignore_eos). */
  ignoreEos?: boolean;
  /** Constrain the output with a grammar (from `Engine.grammarFor`). */
  grammar?: LlamaGrammar;
}

export interface GenerateResult {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finish: 'stop' | 'length';
}

/** A generation whose events ended before its `done` (a broken generation, not a short answer). */
export const GENERATION_ENDED = 'generation ended without a result';

export type GenerateEvent = { type: 'text'; text: string } | { type: 'done'; result: GenerateResult };

interface Waiter {
  resolve: (s: LlamaSequence) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

let nlcPromise: Promise<NLC> | undefined;
/** Load node-llama-cpp on demand, with a clear message when the optional dependency is missing. */
export function loadNodeLlamaCpp(): Promise<NLC> {
  nlcPromise ??= import('node-llama-cpp').catch((err: unknown) => {
    nlcPromise = undefined;
    throw new PorticoError(
      'upstream_unavailable',
      `the built-in engine needs the optional dependency node-llama-cpp (npm install node-llama-cpp): ${String(err)}`,
    );
  });
  return nlcPromise;
}

export class Engine {
  readonly modelPath: string;
  readonly summary: GgufSummary;
  readonly threads: number;
  readonly sequences: number;
  readonly stats: EngineStats;
  #llama: Llama;
  #model: LlamaModel;
  #context: LlamaContext;
  #wrapper: ChatWrapper;
  #free: LlamaSequence[] = [];
  #queue: Waiter[] = [];
  #maxQueue: number;
  #queueTimeoutMs: number;
  #embedding: Promise<LlamaEmbeddingContext> | undefined;
  #closed = false;
  #grammars = new Map<string, Promise<LlamaGrammar>>();

  private constructor(
    opts: Required<Omit<EngineOptions, 'gpu' | 'metrics'>>,
    stats: EngineStats,
    summary: GgufSummary,
    llama: Llama,
    model: LlamaModel,
    context: LlamaContext,
    wrapper: ChatWrapper,
  ) {
    this.modelPath = opts.modelPath;
    this.stats = stats;
    this.summary = summary;
    this.threads = opts.threads;
    this.sequences = opts.sequences;
    this.#maxQueue = opts.maxQueue;
    this.#queueTimeoutMs = opts.queueTimeoutMs;
    this.#llama = llama;
    this.#model = model;
    this.#context = context;
    this.#wrapper = wrapper;
    for (let i = 0; i < opts.sequences; i++) this.#free.push(context.getSequence());
  }

  /** Validate the file (corrupt files become errors, not crashes), then load it. */
  static async load(options: EngineOptions): Promise<Engine> {
    const opts = {
      modelPath: options.modelPath,
      threads: options.threads ?? defaultThreads(),
      sequences: options.sequences ?? 4,
      contextPerSequence: options.contextPerSequence ?? 2048,
      maxQueue: options.maxQueue ?? 64,
      queueTimeoutMs: options.queueTimeoutMs ?? 30_000,
    };
    const summary = await validateGguf(opts.modelPath);
    const nlc = await loadNodeLlamaCpp();
    const llama = await nlc.getLlama({
      gpu: options.gpu ?? 'auto',
      build: 'never',
      logLevel: nlc.LlamaLogLevel.error,
    });
    const model = await llama.loadModel({ modelPath: opts.modelPath });
    const context = await model.createContext({
      contextSize: opts.contextPerSequence * opts.sequences,
      sequences: opts.sequences,
      threads: opts.threads,
      batchSize: Math.min(512, opts.contextPerSequence),
    });
    const wrapper = nlc.resolveChatWrapper(model) as ChatWrapper;
    return new Engine(opts, new EngineStats(options.metrics), summary, llama, model, context, wrapper);
  }

  get modelName(): string {
    const n = this.summary.metadata.get('general.name');
    return typeof n === 'string' && n ? n : this.summary.architecture;
  }
  get running(): number {
    return this.sequences - this.#free.length;
  }
  get waiting(): number {
    return this.#queue.length;
  }
  get embeddingLength(): number {
    return this.#model.embeddingVectorSize;
  }

  #acquire(signal?: AbortSignal): Promise<LlamaSequence> {
    if (this.#closed) return Promise.reject(new PorticoError('upstream_unavailable', 'the engine is closed'));
    signal?.throwIfAborted();
    const free = this.#free.pop();
    if (free) return Promise.resolve(free);
    if (this.#queue.length >= this.#maxQueue)
      return Promise.reject(
        new PorticoError('upstream_unavailable', `engine queue is full (${this.#maxQueue} waiting)`),
      );
    return new Promise<LlamaSequence>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#remove(waiter);
        reject(
          new PorticoError(
            'upstream_unavailable',
            `no engine sequence free within ${this.#queueTimeoutMs} ms (queue timeout)`,
          ),
        );
      }, this.#queueTimeoutMs);
      const onAbort = () => {
        this.#remove(waiter);
        reject(signal?.reason ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const waiter: Waiter = {
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      this.#queue.push(waiter);
    });
  }

  #remove(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    if (i >= 0) this.#queue.splice(i, 1);
    w.cleanup();
  }

  async #release(seq: LlamaSequence): Promise<void> {
    try {
      await seq.clearHistory();
    } catch {
      // a disposed context cannot be cleared; the sequence is dropped with it
    }
    const next = this.#queue.shift();
    if (next) {
      next.cleanup();
      next.resolve(seq);
    } else this.#free.push(seq);
  }

  /** Render chat messages with the model's own chat template and tokenize them. */
  chatTokens(messages: readonly ChatMessageIn[]): Token[] {
    const history = messages.map((m) =>
      m.role === 'assistant'
        ? { type: 'model' as const, response: [m.content] }
        : m.role === 'system' || m.role === 'developer'
          ? { type: 'system' as const, text: m.content }
          : { type: 'user' as const, text: m.content },
    );
    history.push({ type: 'model', response: [] });
    const state = this.#wrapper.generateContextState({ chatHistory: history });
    return state.contextText.tokenize(this.#model.tokenizer);
  }

  /**
   * The grammar for a structured output (node-llama-cpp's JSON and JSON-schema grammars), compiled
   * once per schema. A schema the grammar compiler does not take is the client's 400, not a 500.
   */
  grammarFor(format: OutputFormat): Promise<LlamaGrammar> {
    const key = format.type === 'json' ? 'json' : JSON.stringify(format.schema);
    let g = this.#grammars.get(key);
    if (!g && format.type === 'json_schema') {
      const bad = schemaProblem(format.schema);
      if (bad)
        return Promise.reject(
          new PorticoError('invalid_request', `response_format.json_schema.${bad.path} ${bad.problem}.`, {
            param: 'response_format.json_schema.schema',
          }),
        );
    }
    if (!g) {
      g = (
        format.type === 'json'
          ? this.#llama.getGrammarFor('json')
          : // The schema is the client's: node-llama-cpp checks it at run time.
            this.#llama.createGrammarForJsonSchema(
              format.schema as Parameters<Llama['createGrammarForJsonSchema']>[0],
            )
      ).catch((err: unknown) => {
        this.#grammars.delete(key);
        throw new PorticoError(
          'invalid_request',
          `The engine cannot enforce this response_format schema: ${err instanceof Error ? err.message : String(err)}`,
          { param: 'response_format.json_schema.schema' },
        );
      });
      if (this.#grammars.size >= GRAMMAR_CACHE_SIZE) {
        const oldest = this.#grammars.keys().next().value;
        if (oldest !== undefined) this.#grammars.delete(oldest);
      }
      this.#grammars.set(key, g);
    }
    return g;
  }

  textTokens(text: string): Token[] {
    return this.#model.tokenize(text, false);
  }

  /**
   * Generate from prompt tokens; yields text pieces, then a final 'done' event. Aborting the signal
   * stops decoding and frees the sequence.
   */
  async *generate(prompt: Token[], opts: GenerateOptions): AsyncGenerator<GenerateEvent> {
    const queuedAt = performance.now();
    this.stats.waiting(+1);
    let seq: LlamaSequence;
    try {
      seq = await this.#acquire(opts.signal);
    } finally {
      this.stats.waiting(-1);
    }
    this.stats.running(+1);
    this.stats.queueTime((performance.now() - queuedAt) / 1000);
    const started = performance.now();
    let last = started;
    const out: Token[] = [];
    let emitted = '';
    let finish: 'stop' | 'length' = 'length';
    const stops = (opts.stop ?? []).filter((s) => s.length > 0);
    const holdBack = stops.reduce((m, s) => Math.max(m, s.length - 1), 0);
    try {
      if (prompt.length + opts.maxTokens > this.#context.contextSize / this.sequences)
        throw new PorticoError(
          'max_tokens_exceeded',
          `prompt (${prompt.length} tokens) + max_tokens (${opts.maxTokens}) exceeds the engine's ${this.#context.contextSize / this.sequences}-token context`,
        );
      this.stats.promptTokens(prompt.length);
      if (opts.maxTokens > 0) {
        const nlc = opts.grammar ? await loadNodeLlamaCpp() : undefined;
        const gen = seq.evaluate(prompt, {
          temperature: opts.temperature ?? 0,
          ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
          ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
          ...(nlc && opts.grammar
            ? {
                grammarEvaluationState: new nlc.LlamaGrammarEvaluationState({
                  model: this.#model,
                  grammar: opts.grammar,
                }),
              }
            : {}),
        });
        try {
          for await (const token of gen) {
            opts.signal?.throwIfAborted();
            const now = performance.now();
            if (out.length === 0) this.stats.ttft((now - started) / 1000);
            else this.stats.itl((now - last) / 1000);
            last = now;
            if (!opts.ignoreEos && (this.#model.isSpecialToken(token) || token === this.#model.tokens.eos)) {
              finish = 'stop';
              break;
            }
            out.push(token);
            this.stats.generationTokens(1);
            const text = this.#model.detokenize(out);
            let stopAt = -1;
            for (const s of stops) {
              const i = text.indexOf(s, Math.max(0, emitted.length - s.length));
              if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
            }
            if (stopAt >= 0) {
              if (stopAt > emitted.length) yield { type: 'text', text: text.slice(emitted.length, stopAt) };
              emitted = text.slice(0, stopAt);
              finish = 'stop';
              break;
            }
            // hold back an incomplete UTF-8 character and a possible stop-sequence prefix
            let safe = text.endsWith('\uFFFD') ? text.length - 1 : text.length;
            safe = Math.max(emitted.length, safe - holdBack);
            if (safe > emitted.length) {
              yield { type: 'text', text: text.slice(emitted.length, safe) };
              emitted = text.slice(0, safe);
            }
            if (out.length >= opts.maxTokens) break;
          }
        } finally {
          await gen.return();
        }
        if (finish === 'length' || (finish === 'stop' && stops.length === 0)) {
          const text = this.#model.detokenize(out);
          if (text.length > emitted.length && !emitted.endsWith(text)) {
            yield { type: 'text', text: text.slice(emitted.length) };
            emitted = text;
          }
        }
      }
      this.stats.finished(finish);
      this.stats.e2e((performance.now() - queuedAt) / 1000);
      yield {
        type: 'done',
        result: { text: emitted, promptTokens: prompt.length, completionTokens: out.length, finish },
      };
    } finally {
      this.stats.running(-1);
      await this.#release(seq);
    }
  }

  /** Collect a whole generation. */
  async complete(prompt: Token[], opts: GenerateOptions): Promise<GenerateResult> {
    for await (const ev of this.generate(prompt, opts)) if (ev.type === 'done') return ev.result;
    throw new Error(GENERATION_ENDED);
  }

  async embed(text: string): Promise<{ vector: number[]; tokens: number }> {
    this.#embedding ??= this.#model.createEmbeddingContext({ contextSize: 512, threads: this.threads });
    const ctx = await this.#embedding;
    const tokens = this.#model.tokenize(text, false);
    const e = await ctx.getEmbeddingFor(tokens);
    return { vector: [...e.vector], tokens: tokens.length };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#queue.splice(0)) {
      w.cleanup();
      w.reject(new PorticoError('upstream_unavailable', 'the engine is closing'));
    }
    if (this.#embedding) await (await this.#embedding).dispose().catch(() => undefined);
    await this.#context.dispose();
    await this.#model.dispose();
    void this.#llama;
  }
}
