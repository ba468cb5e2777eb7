/**
 * The backend simulator: an OpenAI-compatible "model" with a latency model (time to first token,
 * inter-token delay, output length, jitter). Used in-process as provider kind `sim` and over HTTP by
 * `portico sim`. Deterministic: the same request gives the same text.
 */
import { mulberry32 } from '../lib/prng.js';
import { sleep } from '../lib/abort.js';
import { injectedStatusError, planFaults, SimDisconnect, SimMalformed, type FaultPlan } from './faults.js';
import { newCompletionId } from '../lib/ids.js';
import { PorticoError } from '../errors/portico-error.js';
import { SimOptionsSchema, type SimOptions, type SimOptionsInput } from '../config/schema.js';
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
  ChatMessage,
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingRequest,
  EmbeddingResponse,
  FinishReason,
  RerankRequest,
  RerankResponse,
  ToolCall,
  Usage,
} from '../providers/openai-types.js';
import {
  buildToolCall,
  chooseTool,
  countPromptTokens,
  countWords,
  echoText,
  embedText,
  floatsToBase64,
  loremText,
  messageText,
  cutAtStop,
  rerankScore,
  sampleFromSchema,
  splitTokens,
  tokenLogprobs,
  wordSource,
} from './generate.js';
import { fnv1a32 } from '../lib/hash.js';
import { promptList } from '../providers/prompt.js';

/**
 * The simulator has no vocabulary: a prompt of token ids (which it takes, as vLLM does) is planned
 * as a text of one word per id, so it counts one prompt token per id (plus the message framing).
 */
function promptText(p: string | number[]): string {
  return typeof p === 'string' ? p : p.join(' ');
}

interface Plan {
  text: string;
  tokens: string[];
  toolCall?: ToolCall;
  finish: FinishReason;
  usage: Usage;
  /** Per-token logprobs when the request asked for them. */
  logprobs?: ReturnType<typeof tokenLogprobs>;
}

type PlanRequest = {
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  tools?: ChatCompletionRequest['tools'];
  tool_choice?: ChatCompletionRequest['tool_choice'];
  seed?: number | null;
  stop?: string | string[] | null;
  logprobs?: unknown;
  top_logprobs?: unknown;
  response_format?: unknown;
};

/** JSON the request's response_format asks for (an object that validates against its schema), if any. */
function jsonAnswer(rf: unknown, words: () => string): string | undefined {
  if (typeof rf !== 'object' || rf === null) return undefined;
  const f = rf as { type?: unknown; json_schema?: { schema?: unknown } };
  if (f.type === 'json_object') return JSON.stringify({ answer: `${words()} ${words()} ${words()}` });
  if (f.type === 'json_schema') return JSON.stringify(sampleFromSchema(f.json_schema?.schema ?? {}, words));
  return undefined;
}

/** JSON has no spaces to split on: stream it in 8-character pieces, as tokens. */
function jsonTokens(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 8) out.push(text.slice(i, i + 8));
  return out;
}

/**
 * What the simulator reports as it serves, for `portico sim`'s vLLM-style /metrics
 * (src/sim/metrics.ts). The in-process simulator (provider kind `sim`) has none.
 */
export interface SimObserver {
  /** A request started generating with this many prompt tokens (embeddings, rerank: its input). */
  promptTokens(n: number): void;
  /** Tokens generated (per token when streaming, all at once otherwise). */
  generationTokens(n: number): void;
  /** Arrival (injected delays included) to the first token. */
  firstToken(seconds: number): void;
  /** Prefix-cache model: prompt tokens looked up, and how many of them were cached. */
  prefixCache(queried: number, hit: number): void;
}

export class Simulator implements Provider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly kind = 'sim';
  readonly id: string;
  #opts: SimOptions;
  #rnd: () => number;
  #running = 0;
  #waiting = 0;
  #kvTokens = 0;
  #served = 0;
  /** Told what the simulator serves (`portico sim` sets it for /metrics). */
  observer: SimObserver | undefined;

  constructor(id: string, opts: SimOptionsInput = {}) {
    this.id = id;
    this.#opts = SimOptionsSchema.parse(opts);
    this.#rnd = mulberry32(this.#opts.seed + 1);
  }

  get options(): SimOptions {
    return this.#opts;
  }
  /** Change the latency model at runtime (drills): the settings `patch` names replace the current ones. */
  configure(patch: Partial<SimOptions>): SimOptions {
    this.#opts = SimOptionsSchema.parse({ ...this.#opts, ...patch });
    return this.#opts;
  }
  /** Replace every setting at once: what `opts` leaves out takes its default (no `faults`: none). */
  replaceOptions(opts: SimOptionsInput): SimOptions {
    this.#opts = SimOptionsSchema.parse(opts);
    return this.#opts;
  }
  /** Requests generating (past their injected delays). */
  get running(): number {
    return this.#running;
  }
  /** Requests held before their first byte by an injected delay or hang (a model still loading). */
  get waiting(): number {
    return this.#waiting;
  }
  /** Tokens (prompt and planned answer) of the requests running: the modelled KV cache in use. */
  get kvTokens(): number {
    return this.#kvTokens;
  }

  /** A request starts generating: counted running, its tokens held; the returned function ends it. */
  #begin(promptTokens: number, answerTokens: number): () => void {
    const held = promptTokens + answerTokens;
    this.#running++;
    this.#kvTokens += held;
    this.observer?.promptTokens(promptTokens);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#running--;
      this.#kvTokens -= held;
    };
  }

  #firstToken(arrived: number): void {
    this.observer?.firstToken((performance.now() - arrived) / 1000);
  }
  get served(): number {
    return this.#served;
  }

  #prefixSeen = new Map<string, number>();
  /** Prefix-cache model: requests whose prefix was cached (hits) or not (misses). */
  prefixHits = 0;
  prefixMisses = 0;

  /** Injected faults for one request: delays, hangs and error statuses happen here, before any byte. */
  async #enter(ctx: ProviderCallContext, streaming: boolean): Promise<FaultPlan> {
    const f = this.#opts.faults;
    const plan = planFaults(f, this.#rnd);
    if (plan.extraDelayMs > 0 || plan.hang) {
      this.#waiting++;
      try {
        if (plan.extraDelayMs > 0) await sleep(plan.extraDelayMs, ctx.signal);
        if (plan.hang) await sleep(2_147_483_647, ctx.signal);
      } finally {
        this.#waiting--;
      }
    }
    if (plan.status !== undefined) throw injectedStatusError(this.id, plan.status, f?.retry_after_s);
    if (plan.malformed && !streaming) throw new SimMalformed(this.id);
    return plan;
  }

  /** Time to first token, with the prefix-cache model when enabled. */
  #ttft(messages: ChatMessage[], promptTokens: number): number {
    const pc = this.#opts.prefix_cache;
    const base = this.#delay(this.#opts.ttft_ms);
    if (!pc?.enabled) return base;
    const prefix = messages
      .map((m) => messageText(m.content))
      .join('\n')
      .slice(0, pc.prefix_chars);
    const now = Date.now();
    const seen = this.#prefixSeen.get(prefix);
    if (this.#prefixSeen.size > 10_000) this.#prefixSeen.clear();
    this.#prefixSeen.set(prefix, now);
    if (seen !== undefined && now - seen <= pc.ttl_ms) {
      this.prefixHits++;
      this.observer?.prefixCache(promptTokens, Math.min(promptTokens, countWords(prefix)));
      return this.#delay(pc.hit_ttft_ms);
    }
    this.prefixMisses++;
    this.observer?.prefixCache(promptTokens, 0);
    return base;
  }

  #delay(base: number): number {
    if (base <= 0) return 0;
    const j = this.#opts.jitter;
    return j > 0 ? base * (1 + j * (this.#rnd() * 2 - 1)) : base;
  }

  /** One plan per requested choice (`n`), each with its own seed. */
  #plans(messages: ChatMessage[], req: PlanRequest & { n?: number | null }): Plan[] {
    const n = Math.max(1, Math.min(128, req.n ?? 1));
    return Array.from({ length: n }, (_, i) => this.#plan(messages, req, i));
  }

  #plan(messages: ChatMessage[], req: PlanRequest, choice = 0): Plan {
    const promptTokens = countPromptTokens(messages);
    const limit = req.max_completion_tokens ?? req.max_tokens ?? undefined;
    const lastUser = [...messages].reverse().find((m) => m.role === 'user');
    const lastUserText = lastUser ? messageText(lastUser.content) : '';
    const seedText = messages.map((m) => m.role + ':' + messageText(m.content)).join('\n');
    const lastIsUser = messages[messages.length - 1]?.role === 'user';
    const tool = chooseTool(req.tools, req.tool_choice, lastUserText, lastIsUser);
    if (tool) {
      const toolCall = buildToolCall(tool, seedText + (choice > 0 ? `#${choice}` : ''));
      const completion = Math.max(1, countWords(toolCall.function.arguments));
      return { text: '', tokens: [], toolCall, finish: 'tool_calls', usage: usage(promptTokens, completion) };
    }
    const seed = this.#opts.seed + (req.seed ?? 0) + choice * 7919;
    const json = jsonAnswer(req.response_format, wordSource(seedText, seed));
    let text =
      json ??
      (this.#opts.mode === 'echo' ? echoText(messages) : loremText(seedText, seed, this.#opts.output_tokens));
    let finish: FinishReason = 'stop';
    const cut = json === undefined ? cutAtStop(text, req.stop) : undefined;
    if (cut !== undefined) text = cut;
    let tokens = json !== undefined ? jsonTokens(text) : splitTokens(text);
    if (limit !== undefined && limit !== null && tokens.length > limit) {
      tokens = tokens.slice(0, limit);
      text = tokens.join('');
      finish = 'length';
    }
    const plan: Plan = { text, tokens, finish, usage: usage(promptTokens, tokens.length) };
    if (req.logprobs === true) {
      const top = typeof req.top_logprobs === 'number' ? Math.max(0, Math.min(20, req.top_logprobs)) : 0;
      plan.logprobs = tokenLogprobs(tokens, top, fnv1a32(seedText, seed >>> 0));
    }
    return plan;
  }

  /** A non-streamed answer takes as long as its stream would: first token, then the rest. */
  async #generationTime(tokens: number, signal: AbortSignal, arrived: number, ttft?: number): Promise<void> {
    const first = ttft ?? this.#delay(this.#opts.ttft_ms);
    const rest = tokens > 1 ? this.#delay(this.#opts.itl_ms) * (tokens - 1) : 0;
    await sleep(first, signal);
    this.#firstToken(arrived);
    await sleep(rest, signal);
  }

  async chat(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<ChatCompletionResponse> {
    const arrived = performance.now();
    await this.#enter(ctx, false);
    const plans = this.#plans(req.messages, req);
    const first = plans[0] as Plan;
    const completion = plans.reduce((n, p) => n + p.usage.completion_tokens, 0);
    const end = this.#begin(first.usage.prompt_tokens, completion);
    try {
      const longest = Math.max(...plans.map((p) => p.tokens.length));
      const ttft = this.#ttft(req.messages, first.usage.prompt_tokens);
      await this.#generationTime(longest || 1, ctx.signal, arrived, ttft);
      this.#served++;
      this.observer?.generationTokens(completion);
      return {
        id: newCompletionId(),
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: req.model,
        choices: plans.map((plan, index) => ({
          index,
          message: plan.toolCall
            ? { role: 'assistant', content: null, tool_calls: [plan.toolCall] }
            : { role: 'assistant', content: plan.text },
          finish_reason: plan.finish,
          ...(plan.logprobs ? { logprobs: { content: plan.logprobs, refusal: null } } : {}),
        })),
        usage: usage(first.usage.prompt_tokens, completion),
      };
    } finally {
      end();
    }
  }

  async chatStream(
    req: ChatCompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<ChatCompletionChunk>> {
    const arrived = performance.now();
    const faults = await this.#enter(ctx, true);
    const backendId = this.id;
    const plans = this.#plans(req.messages, req);
    const ttft = this.#ttft(req.messages, plans[0]?.usage.prompt_tokens ?? 0);
    const total = usage(
      plans[0]?.usage.prompt_tokens ?? 0,
      plans.reduce((n, p) => n + p.usage.completion_tokens, 0),
    );
    const includeUsage = req.stream_options?.include_usage === true;
    const id = newCompletionId();
    const created = Math.floor(Date.now() / 1000);
    const model = req.model;
    const chunk = (
      delta: ChatCompletionChunk['choices'][0]['delta'],
      finish: FinishReason = null,
      index = 0,
      logprobs?: unknown,
    ): ChatCompletionChunk => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index, delta, finish_reason: finish, ...(logprobs !== undefined ? { logprobs } : {}) }],
    });
    const delay = (ms: number): number => this.#delay(ms);
    const opts = (): SimOptions => this.#opts;
    const begin = (): (() => void) => this.#begin(total.prompt_tokens, total.completion_tokens);
    const firstToken = (): void => this.#firstToken(arrived);
    const generated = (n: number): void => this.observer?.generationTokens(n);
    const served = (): void => {
      this.#served++;
    };
    async function* run(): AsyncGenerator<ChatCompletionChunk> {
      const end = begin();
      try {
        await sleep(ttft, ctx.signal);
        firstToken();
        if (faults.malformed) throw new SimMalformed(backendId);
        // Choices (n > 1) stream one after another, each chunk naming its choice index.
        for (const [c, plan] of plans.entries()) {
          if (plan.toolCall) {
            const tc = plan.toolCall;
            yield chunk(
              {
                role: 'assistant',
                content: null,
                tool_calls: [
                  {
                    index: 0,
                    id: tc.id,
                    type: 'function',
                    function: { name: tc.function.name, arguments: '' },
                  },
                ],
              },
              null,
              c,
            );
            // Argument fragments, like real providers send them.
            const args = tc.function.arguments;
            for (let i = 0; i < args.length; i += 8) {
              if (i > 0) await sleep(delay(opts().itl_ms), ctx.signal);
              yield chunk(
                { tool_calls: [{ index: 0, function: { arguments: args.slice(i, i + 8) } }] },
                null,
                c,
              );
            }
            generated(plan.usage.completion_tokens);
          } else {
            yield chunk({ role: 'assistant', content: '' }, null, c);
            for (let i = 0; i < plan.tokens.length; i++) {
              if (i > 0 || c > 0) await sleep(delay(opts().itl_ms), ctx.signal);
              if (faults.disconnectAfter !== undefined && i >= faults.disconnectAfter)
                throw new SimDisconnect(backendId);
              const lp = plan.logprobs?.[i];
              generated(1);
              yield chunk(
                { content: plan.tokens[i] as string },
                null,
                c,
                lp ? { content: [lp], refusal: null } : undefined,
              );
            }
          }
          yield chunk({}, plan.finish, c);
        }
        if (includeUsage)
          yield { id, object: 'chat.completion.chunk', created, model, choices: [], usage: total };
        served();
      } finally {
        end();
      }
    }
    return run();
  }

  async completion(req: CompletionRequest, ctx: ProviderCallContext): Promise<CompletionResponse> {
    const arrived = performance.now();
    await this.#enter(ctx, false);
    const prompts = promptList(req.prompt).map(promptText);
    const choices: CompletionResponse['choices'] = [];
    let prompt = 0;
    let completion = 0;
    let longest = 1;
    for (const [index, p] of prompts.entries()) {
      const plan = this.#plan([{ role: 'user', content: p }], {
        max_tokens: req.max_tokens ?? 16,
        seed: req.seed ?? null,
        stop: req.stop ?? null,
      });
      choices.push({ index, text: plan.text, finish_reason: plan.finish });
      prompt += plan.usage.prompt_tokens;
      completion += plan.usage.completion_tokens;
      longest = Math.max(longest, plan.tokens.length);
    }
    const end = this.#begin(prompt, completion);
    try {
      await this.#generationTime(longest, ctx.signal, arrived);
    } finally {
      end();
    }
    this.#served++;
    this.observer?.generationTokens(completion);
    return {
      id: newCompletionId('cmpl'),
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: req.model,
      choices,
      usage: usage(prompt, completion),
    };
  }

  async completionStream(
    req: CompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<CompletionChunk>> {
    const arrived = performance.now();
    const faults = await this.#enter(ctx, true);
    const backendId = this.id;
    const prompt = promptText(promptList(req.prompt)[0] ?? '');
    const plan = this.#plan([{ role: 'user', content: prompt }], {
      max_tokens: req.max_tokens ?? 16,
      seed: req.seed ?? null,
      stop: req.stop ?? null,
    });
    const id = newCompletionId('cmpl');
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = req.stream_options?.include_usage === true;
    const delay = (ms: number): number => this.#delay(ms);
    const opts = (): SimOptions => this.#opts;
    const begin = (): (() => void) => this.#begin(plan.usage.prompt_tokens, plan.usage.completion_tokens);
    const firstToken = (): void => this.#firstToken(arrived);
    const generated = (n: number): void => this.observer?.generationTokens(n);
    const served = (): void => {
      this.#served++;
    };
    async function* run(): AsyncGenerator<CompletionChunk> {
      const end = begin();
      try {
        await sleep(delay(opts().ttft_ms), ctx.signal);
        firstToken();
        if (faults.malformed) throw new SimMalformed(backendId);
        for (let i = 0; i < plan.tokens.length; i++) {
          if (i > 0) await sleep(delay(opts().itl_ms), ctx.signal);
          if (faults.disconnectAfter !== undefined && i >= faults.disconnectAfter)
            throw new SimDisconnect(backendId);
          generated(1);
          yield {
            id,
            object: 'text_completion',
            created,
            model: req.model,
            choices: [{ index: 0, text: plan.tokens[i] as string, finish_reason: null }],
          };
        }
        yield {
          id,
          object: 'text_completion',
          created,
          model: req.model,
          choices: [{ index: 0, text: '', finish_reason: plan.finish }],
        };
        if (includeUsage)
          yield { id, object: 'text_completion', created, model: req.model, choices: [], usage: plan.usage };
        served();
      } finally {
        end();
      }
    }
    return run();
  }

  async embeddings(req: EmbeddingRequest, ctx: ProviderCallContext): Promise<EmbeddingResponse> {
    const inputs: unknown[] = Array.isArray(req.input) ? req.input : [req.input];
    const dims = req.dimensions ?? this.#opts.embedding_dimensions;
    let tokens = 0;
    const data = inputs.map((input, index) => {
      const text = typeof input === 'string' ? input : JSON.stringify(input);
      tokens += typeof input === 'string' ? countWords(input) : Array.isArray(input) ? input.length : 1;
      const v = embedText(text, dims, this.#opts.seed);
      return {
        object: 'embedding' as const,
        index,
        embedding: req.encoding_format === 'base64' ? floatsToBase64(v) : v,
      };
    });
    const end = this.#begin(tokens, 0);
    try {
      await sleep(this.#delay(this.#opts.ttft_ms), ctx.signal);
    } finally {
      end();
    }
    this.#served++;
    return { object: 'list', data, model: req.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
  }

  async rerank(req: RerankRequest, ctx: ProviderCallContext): Promise<RerankResponse> {
    const scored = req.documents.map((d, index) => ({
      index,
      relevance_score: rerankScore(req.query, d),
      ...(req.return_documents ? { document: { text: d } } : {}),
    }));
    scored.sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
    const tokens = countWords(req.query) + req.documents.reduce((n, d) => n + countWords(d), 0);
    const end = this.#begin(tokens, 0);
    try {
      await sleep(this.#delay(this.#opts.ttft_ms), ctx.signal);
    } finally {
      end();
    }
    this.#served++;
    return {
      id: newCompletionId('rerank'),
      model: req.model,
      results: req.top_n ? scored.slice(0, req.top_n) : scored,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  }

  async health(): Promise<HealthResult> {
    return { ok: true, latencyMs: 0 };
  }

  async close(): Promise<void> {}
}

function usage(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** Thrown by the HTTP simulator for bad input, mapped to OpenAI error JSON. */
export function simBadRequest(message: string, param?: string): PorticoError {
  return new PorticoError('invalid_request', message, { param: param ?? null });
}
