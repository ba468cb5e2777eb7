/**
 * The Anthropic Messages adapter (outbound): canonical OpenAI chat in, Anthropic upstream, OpenAI
 * out. Pooled keep-alive connections through undici; streams decoded with eventsource-parser.
 */
import { UpstreamPool } from '../upstream-pool.js';
import type { IncomingHttpHeaders } from 'node:http';
import { PorticoError, isPorticoError } from '../../errors/portico-error.js';
import {
  ANTHROPIC_HEADERS,
  type ChatCompletionChunk,
  type ChatCompletionRequest,
  type ChatCompletionResponse,
  type CompletionChunk,
  type CompletionRequest,
  type CompletionResponse,
  type EmbeddingResponse,
  type RerankResponse,
  type Usage,
} from '../openai-types.js';
import {
  PROVIDER_SPEC_VERSION,
  type HealthResult,
  type Provider,
  type ProviderCallContext,
  type ProviderStream,
} from '../spec.js';
import { isTokenPrompt, tokenPromptRefused } from '../prompt.js';
import { toAnthropicRequest } from './convert-request.js';
import { responseToolFor } from './structured-output.js';
import { fromAnthropicResponse, mapUsage } from './convert-response.js';
import { anthropicEventsToChunks } from './convert-stream.js';
import { mapAnthropicError } from './map-error.js';
import { mapTransportError } from '../openai-compatible/map-error.js';
import { decodeAnthropicEvents, readSseMessages } from './read-sse.js';
import { ANTHROPIC_VERSION, type AnthropicMessage, type AnthropicUsage } from './types.js';

export interface AnthropicProviderOptions {
  /** Backend id from config (metrics, logs, error messages). */
  id: string;
  /** Default https://api.anthropic.com; a trailing /v1 is accepted too. */
  baseUrl?: string;
  apiKey: string;
  /** Upstream model name; when unset the request's `model` is forwarded. */
  model?: string;
  /** Sent as max_tokens when the client gives none (Anthropic requires it). Default 4096. */
  defaultMaxTokens?: number;
  /** Max pooled connections to the origin. Default 64. */
  connections?: number;
  /** Idle keep-alive per connection. Default 30 s. */
  keepAliveTimeoutMs?: number;
  /** Extra headers on every call (e.g. anthropic-beta). */
  headers?: Record<string, string>;
  /** Default 2023-06-01. */
  anthropicVersion?: string;
}

interface Upstream {
  status: number;
  headers: Record<string, string>;
  body: AsyncIterable<Uint8Array> & { text(): Promise<string>; destroy(err?: Error): unknown };
  /** Clears timers and listeners; call once the call is over. */
  done(): void;
  signal: AbortSignal;
}

function flattenHeaders(
  h: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function splitBaseUrl(baseUrl: string): {
  origin: string;
  messagesPath: string;
  countTokensPath: string;
  modelsPath: string;
} {
  const u = new URL(baseUrl);
  let prefix = u.pathname.replace(/\/+$/, '');
  if (!prefix.endsWith('/v1')) prefix += '/v1';
  return {
    origin: u.origin,
    messagesPath: `${prefix}/messages`,
    countTokensPath: `${prefix}/messages/count_tokens`,
    modelsPath: `${prefix}/models`,
  };
}

export class AnthropicProvider implements Provider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly kind = 'anthropic';
  readonly id: string;
  #upstream: UpstreamPool;
  #pool: UpstreamPool['pool'];
  #paths: { messagesPath: string; countTokensPath: string; modelsPath: string };
  #opts: Required<Pick<AnthropicProviderOptions, 'apiKey' | 'defaultMaxTokens' | 'anthropicVersion'>> & {
    model: string | undefined;
    headers: Record<string, string>;
  };

  constructor(opts: AnthropicProviderOptions) {
    this.id = opts.id;
    const { origin, ...paths } = splitBaseUrl(opts.baseUrl ?? 'https://api.anthropic.com');
    this.#paths = paths;
    this.#upstream = new UpstreamPool(origin, {
      connections: opts.connections ?? 64,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 30_000,
    });
    this.#pool = this.#upstream.pool;
    this.#opts = {
      apiKey: opts.apiKey,
      defaultMaxTokens: opts.defaultMaxTokens ?? 4096,
      anthropicVersion: opts.anthropicVersion ?? ANTHROPIC_VERSION,
      model: opts.model,
      headers: opts.headers ?? {},
    };
  }

  #headers(
    ctx: ProviderCallContext | undefined,
    stream: boolean,
    client?: Record<string, string>,
  ): Record<string, string> {
    const h: Record<string, string> = {
      ...(ctx?.headers ?? {}),
      ...this.#opts.headers,
      'content-type': 'application/json',
      accept: stream ? 'text/event-stream' : 'application/json',
      'x-api-key': this.#opts.apiKey,
      // An Anthropic client's own API version wins: it knows the shapes it sent.
      'anthropic-version': client?.['anthropic-version'] ?? this.#opts.anthropicVersion,
    };
    const beta = client?.['anthropic-beta'];
    if (beta !== undefined) {
      const configured = h['anthropic-beta'];
      h['anthropic-beta'] = configured ? `${configured},${beta}` : beta;
    }
    return h;
  }

  /**
   * Sends one request. The per-attempt timeout (ctx.timeoutMs) covers the whole call for plain
   * requests and the wait for response headers for streams (a long generation is not a timeout).
   * Every failure says which backend failed how (`upstream`): dispatch retries and opens the
   * circuit from that.
   */
  async #send(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    ctx: ProviderCallContext,
    stream: boolean,
    client?: Record<string, string>,
  ): Promise<Upstream> {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(ctx.signal.reason);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (ctx.timeoutMs !== undefined && ctx.timeoutMs > 0) {
      timer = setTimeout(() => {
        ac.abort(
          new PorticoError(
            'upstream_timeout',
            `Backend '${this.id}' did not answer within ${ctx.timeoutMs} ms.`,
            { upstream: { backend: this.id, class: 'timeout' } },
          ),
        );
      }, ctx.timeoutMs);
    }
    const done = (): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      ctx.signal.removeEventListener('abort', onAbort);
    };
    try {
      const res = await this.#pool.request({
        method,
        path,
        headers: this.#headers(ctx, stream, client),
        body: body === undefined ? null : JSON.stringify(body),
        signal: ac.signal,
      });
      if (stream && timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      return {
        status: res.statusCode,
        headers: flattenHeaders(res.headers),
        body: res.body,
        done,
        signal: ac.signal,
      };
    } catch (e) {
      done();
      throw this.#networkError(e, ac.signal, 'request');
    }
  }

  /**
   * A failure of the call: the abort's reason (the per-attempt timeout's upstream_timeout, or the
   * caller's own cancellation), an error already mapped, or a transport error classified as the
   * OpenAI-compatible adapter does (connect, timeout, stream_cut).
   */
  #networkError(e: unknown, signal: AbortSignal, phase: 'request' | 'stream'): unknown {
    if (signal.aborted) return signal.reason;
    if (isPorticoError(e)) return e;
    return mapTransportError(this.id, e, signal, phase);
  }

  /** The upstream answered 2xx with something that is not what the API returns. */
  #protocolError(what: string): PorticoError {
    return new PorticoError('upstream_error', `Backend '${this.id}' answered ${what}.`, {
      upstream: { backend: this.id, class: 'protocol' },
    });
  }

  /** A successful answer's body as text (an error status is mapped to the catalog). */
  async #readOk(up: Upstream): Promise<string> {
    if (up.status < 200 || up.status >= 300) throw await this.#readError(up);
    try {
      return await up.body.text();
    } catch (e) {
      throw this.#networkError(e, up.signal, 'stream');
    } finally {
      up.done();
    }
  }

  async #readError(up: Upstream): Promise<PorticoError> {
    let text = '';
    try {
      text = await up.body.text();
    } catch {
      // the status alone decides
    } finally {
      up.done();
    }
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // non-JSON error page (proxy, load balancer)
    }
    return mapAnthropicError(up.status, parsed, up.headers, this.id);
  }

  async chat(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<ChatCompletionResponse> {
    const body = toAnthropicRequest({ ...req, stream: false }, this.#convertOpts());
    const up = await this.#send('POST', this.#paths.messagesPath, body, ctx, false, req[ANTHROPIC_HEADERS]);
    const text = await this.#readOk(up);
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      throw this.#protocolError('with a body that is not JSON');
    }
    if (!isMessage(msg)) throw this.#protocolError('with an unexpected body (not a message)');
    return fromAnthropicResponse(msg, { model: req.model, responseTool: responseToolFor(req) });
  }

  async chatStream(
    req: ChatCompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<ChatCompletionChunk>> {
    const body = toAnthropicRequest({ ...req, stream: true }, this.#convertOpts());
    const responseTool = responseToolFor(req);
    const up = await this.#send('POST', this.#paths.messagesPath, body, ctx, true, req[ANTHROPIC_HEADERS]);
    if (up.status < 200 || up.status >= 300) throw await this.#readError(up);
    const includeUsage = req.stream_options?.include_usage === true;
    const networkError = (e: unknown): unknown => this.#networkError(e, up.signal, 'stream');
    const backendId = this.id;
    /** Anthropic's counts so far (message_start's input, the last message_delta's output). */
    let reported: Usage | undefined;
    const onUsage = (u: AnthropicUsage): void => {
      reported = mapUsage(u);
    };
    async function* iterate(): AsyncGenerator<ChatCompletionChunk> {
      let finished = false;
      try {
        yield* anthropicEventsToChunks(
          decodeAnthropicEvents(readSseMessages(up.body, backendId), backendId),
          {
            model: req.model,
            includeUsage,
            backendId,
            responseTool,
            onUsage,
          },
        );
        finished = true;
      } catch (e) {
        throw networkError(e);
      } finally {
        // Early exit (consumer broke off, error): drop the socket so the upstream stops generating.
        if (!finished) up.body.destroy();
        up.done();
      }
    }
    return { upstreamHeaders: up.headers, reportedUsage: () => reported, [Symbol.asyncIterator]: iterate };
  }

  async completion(req: CompletionRequest, ctx: ProviderCallContext): Promise<CompletionResponse> {
    const chat = await this.chat(completionToChat(req), ctx);
    const choice = chat.choices[0];
    const res: CompletionResponse = {
      id: chat.id,
      object: 'text_completion',
      created: chat.created,
      model: chat.model,
      choices: [
        {
          index: 0,
          text: choice?.message.content ?? '',
          finish_reason: choice?.finish_reason ?? 'stop',
          logprobs: null,
        },
      ],
    };
    if (chat.usage) res.usage = chat.usage;
    return res;
  }

  async completionStream(
    req: CompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<CompletionChunk>> {
    const inner = await this.chatStream(completionToChat(req), ctx);
    async function* iterate(): AsyncGenerator<CompletionChunk> {
      for await (const c of inner) {
        const choice = c.choices[0];
        if (choice === undefined) {
          yield {
            id: c.id,
            object: 'text_completion',
            created: c.created,
            model: c.model,
            choices: [],
            usage: c.usage ?? null,
          };
          continue;
        }
        const text = typeof choice.delta.content === 'string' ? choice.delta.content : '';
        if (text === '' && choice.finish_reason === null) continue;
        const out: CompletionChunk = {
          id: c.id,
          object: 'text_completion',
          created: c.created,
          model: c.model,
          choices: [{ index: 0, text, finish_reason: choice.finish_reason }],
        };
        if (c.usage !== undefined) out.usage = c.usage;
        yield out;
      }
    }
    return {
      upstreamHeaders: inner.upstreamHeaders ?? {},
      ...(inner.reportedUsage ? { reportedUsage: inner.reportedUsage } : {}),
      [Symbol.asyncIterator]: iterate,
    };
  }

  /** POST /v1/messages/count_tokens: Anthropic's exact count for this request (no tokens spent). */
  async countTokens(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<number> {
    const {
      max_tokens: _max,
      stream: _stream,
      ...body
    } = toAnthropicRequest({ ...req, stream: false }, this.#convertOpts());
    const up = await this.#send(
      'POST',
      this.#paths.countTokensPath,
      body,
      ctx,
      false,
      req[ANTHROPIC_HEADERS],
    );
    const text = await this.#readOk(up);
    let n: unknown;
    try {
      n = (JSON.parse(text) as { input_tokens?: unknown }).input_tokens;
    } catch {
      n = undefined;
    }
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
      throw this.#protocolError('count_tokens without input_tokens');
    return n;
  }

  async embeddings(): Promise<EmbeddingResponse> {
    throw new PorticoError(
      'unsupported_operation',
      `Backend '${this.id}' (Anthropic) does not serve embeddings.`,
    );
  }

  readonly canRerank = false;
  async rerank(): Promise<RerankResponse> {
    throw new PorticoError(
      'unsupported_operation',
      `Backend '${this.id}' (Anthropic) does not serve rerank.`,
    );
  }

  /** GET /v1/models?limit=1: cheap, authenticated, no tokens spent. */
  async health(signal: AbortSignal): Promise<HealthResult> {
    const t0 = performance.now();
    const ctx: ProviderCallContext = { signal, requestId: 'health', correlationId: 'health' };
    try {
      const up = await this.#send('GET', `${this.#paths.modelsPath}?limit=1`, undefined, ctx, false);
      try {
        await up.body.text();
      } finally {
        up.done();
      }
      const latencyMs = performance.now() - t0;
      return up.status === 200
        ? { ok: true, latencyMs }
        : { ok: false, latencyMs, detail: `HTTP ${up.status}` };
    } catch (e) {
      return {
        ok: false,
        latencyMs: performance.now() - t0,
        detail: e instanceof Error ? e.message : String(e),
      };
    }
  }

  /** This backend's upstream sockets now (/admin/backends). */
  get upstream(): UpstreamPool {
    return this.#upstream;
  }

  async close(): Promise<void> {
    await this.#upstream.close();
  }

  #convertOpts(): { model?: string; defaultMaxTokens: number } {
    return this.#opts.model === undefined
      ? { defaultMaxTokens: this.#opts.defaultMaxTokens }
      : { model: this.#opts.model, defaultMaxTokens: this.#opts.defaultMaxTokens };
  }
}

function isMessage(v: unknown): v is AnthropicMessage {
  return (
    typeof v === 'object' &&
    v !== null &&
    Array.isArray((v as { content?: unknown }).content) &&
    typeof (v as { usage?: unknown }).usage === 'object'
  );
}

/**
 * Legacy completions become one user turn; only a single prompt string is supported (the Messages
 * API takes text, never token ids).
 */
export function completionToChat(req: CompletionRequest): ChatCompletionRequest {
  let prompt: string;
  if (isTokenPrompt(req.prompt)) throw tokenPromptRefused('Anthropic (the Messages API)');
  if (typeof req.prompt === 'string') prompt = req.prompt;
  else if (Array.isArray(req.prompt) && req.prompt.length === 1 && typeof req.prompt[0] === 'string')
    prompt = req.prompt[0];
  else
    throw new PorticoError('invalid_request', 'This backend accepts a single prompt string only.', {
      param: 'prompt',
    });
  const chat: ChatCompletionRequest = { model: req.model, messages: [{ role: 'user', content: prompt }] };
  if (req.max_tokens != null) chat.max_tokens = req.max_tokens;
  if (req.temperature != null) chat.temperature = req.temperature;
  if (req.stop != null) chat.stop = req.stop;
  if (typeof req['top_p'] === 'number') chat.top_p = req['top_p'];
  if (req.stream_options) chat.stream_options = req.stream_options;
  if (typeof req['user'] === 'string') chat.user = req['user'];
  return chat;
}

export function createAnthropicProvider(opts: AnthropicProviderOptions): Provider {
  return new AnthropicProvider(opts);
}
