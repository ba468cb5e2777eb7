/**
 * Adapter for any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI, OpenRouter,
 * a remote `portico engine`, `portico sim`). One undici Pool per backend with keep-alive; SSE parsed
 * into typed chunks; upstream errors mapped to the catalog; aborting ctx.signal destroys the socket.
 */
import type { Dispatcher } from 'undici';
import { UpstreamPool } from '../upstream-pool.js';
import { PorticoError } from '../../errors/portico-error.js';
import { decodeSse, SseProtocolError } from '../../lib/sse.js';
import {
  PROVIDER_SPEC_VERSION,
  type HealthResult,
  type NativeResponses,
  type Provider,
  type ProviderCallContext,
  type ProviderStream,
  type RawSseStream,
} from '../spec.js';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingRequest,
  EmbeddingResponse,
  RerankRequest,
  RerankResponse,
} from '../openai-types.js';
import { mapTransportError, mapUpstreamStatus } from './map-error.js';
import { postForBytes, type TransportPhase } from '../upstream-bytes.js';
import { postForStream, type UpstreamBody } from '../upstream-stream.js';
import { cancellableOf } from '../../lib/abort.js';
import { applyChatQuirks, type PresetQuirks } from '../presets.js';

export interface OpenAICompatibleOptions {
  id: string;
  /** e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  /** Upstream model name; replaces the alias in requests. */
  model: string;
  apiKey?: string;
  headers?: Record<string, string>;
  forceIncludeUsage?: boolean;
  connections?: number;
  keepAliveTimeoutMs?: number;
  pipelining?: number;
  /** Time allowed for response headers (non-streaming: the whole generation). */
  timeoutMs?: number;
  /** Max silence between stream chunks (stream idle timeout). */
  streamIdleTimeoutMs?: number;
  /** Path probed by health(); default `/models` under the base URL. */
  healthPath?: string;
  /** Request quirks of a preset (output cap field, dropped params, supported endpoints). */
  quirks?: PresetQuirks;
  /** The server speaks the Responses API (`responses_api: native`): expose `responses`. */
  nativeResponses?: boolean;
}

/** Events that end a Responses API stream (it sends no [DONE]). */
const RESPONSES_TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);

const MAX_ERROR_BODY = 64 * 1024;

/** First and last non-blank bytes are `{` and `}` (the cheap check; usage extraction parses more). */
function looksLikeJsonObject(buf: Buffer): boolean {
  let i = 0;
  let j = buf.length - 1;
  while (i <= j && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i++;
  while (j >= i && (buf[j] === 0x20 || buf[j] === 0x0a || buf[j] === 0x0d || buf[j] === 0x09)) j--;
  return i < j && buf[i] === 0x7b && buf[j] === 0x7d;
}

/** A transport error (or the cancellation's abort) as the provider reports it. */
function transportErrors(
  id: string,
  ctx: ProviderCallContext,
): (err: unknown, phase: TransportPhase) => Error {
  return (err, phase) => mapTransportError(id, err, ctx.signal, phase);
}

/**
 * The pass-through stream the pipeline reads: a class (its methods on the prototype), not an
 * object literal of closures — see #raw for why.
 */
class OpenAIRawStream implements RawSseStream {
  constructor(
    readonly id: string,
    readonly body: UpstreamBody,
    readonly upstreamModel: string,
    private readonly ctx: ProviderCallContext,
  ) {}

  get upstreamHeaders(): Record<string, string> {
    return this.body.headers;
  }

  // ctx.signal is read only on an error (a CallContext makes it on first use).
  mapError(err: unknown): Error {
    return err instanceof PorticoError ? err : mapTransportError(this.id, err, this.ctx.signal, 'stream');
  }

  eventError(data: string): Error {
    let code = 502;
    try {
      const e = (JSON.parse(data) as { error?: { code?: unknown } }).error;
      if (typeof e?.code === 'number') code = e.code;
    } catch {
      // not JSON: a 502 with the raw text
    }
    return mapUpstreamStatus(this.id, code, data, {});
  }

  cut(): Error {
    return new PorticoError('upstream_error', `backend ${this.id} ended the stream without [DONE]`, {
      upstream: { backend: this.id, class: 'stream_cut' },
    });
  }

  malformed(): Error {
    return new PorticoError('upstream_error', `backend ${this.id} sent a malformed stream event`, {
      upstream: { backend: this.id, class: 'protocol' },
    });
  }
}

export class OpenAICompatibleProvider implements Provider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly kind: string = 'openai';
  readonly id: string;
  #upstream: UpstreamPool;
  #pool: UpstreamPool['pool'];
  #prefix: string;
  #opts: OpenAICompatibleOptions;
  #baseHeaders: Record<string, string>;
  readonly responses?: NativeResponses;

  constructor(opts: OpenAICompatibleOptions) {
    this.id = opts.id;
    this.#opts = opts;
    const url = new URL(opts.baseUrl);
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.#upstream = new UpstreamPool(url.origin, {
      connections: opts.connections ?? 128,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 30_000,
      pipelining: opts.pipelining ?? 1,
    });
    this.#pool = this.#upstream.pool;
    this.#baseHeaders = {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(opts.headers ?? {}),
    };
    if (opts.apiKey) this.#baseHeaders.authorization = `Bearer ${opts.apiKey}`;
    if (opts.nativeResponses)
      this.responses = {
        create: (body, ctx) => this.#json('/responses', { ...body, model: opts.model, stream: false }, ctx),
        stream: (body, ctx) =>
          this.#stream('/responses', { ...body, model: opts.model, stream: true }, ctx, (ev) =>
            RESPONSES_TERMINAL.has(String((ev as { type?: unknown }).type)),
          ),
      };
  }

  async #post(
    path: string,
    body: unknown,
    ctx: ProviderCallContext,
    streaming: boolean,
  ): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#pool.request({
        method: 'POST',
        path: this.#prefix + path,
        headers: ctx.headers ? { ...this.#baseHeaders, ...ctx.headers } : this.#baseHeaders,
        body: JSON.stringify(body),
        signal: ctx.signal,
        headersTimeout: ctx.timeoutMs ?? this.#opts.timeoutMs ?? 300_000,
        bodyTimeout: streaming
          ? (this.#opts.streamIdleTimeoutMs ?? 180_000)
          : (ctx.timeoutMs ?? this.#opts.timeoutMs ?? 300_000),
      });
    } catch (err) {
      throw mapTransportError(this.id, err, ctx.signal, 'request');
    }
    if (res.statusCode >= 400) {
      let text = '';
      try {
        for await (const chunk of res.body) {
          text += chunk.toString();
          if (text.length > MAX_ERROR_BODY) break;
        }
      } catch {
        // body cut while reading an error: the status is enough
      } finally {
        res.body.destroy();
      }
      throw mapUpstreamStatus(this.id, res.statusCode, text, res.headers);
    }
    return res;
  }

  async #json<T>(path: string, body: unknown, ctx: ProviderCallContext): Promise<T> {
    const res = await this.#post(path, body, ctx, false);
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw mapTransportError(this.id, err, ctx.signal, 'stream');
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new PorticoError('upstream_error', `backend ${this.id} returned malformed JSON`, {
        upstream: { backend: this.id, class: 'protocol' },
      });
    }
  }

  /**
   * The answer's bytes (read by a dispatch handler: no Readable per request, upstream-bytes.ts); a
   * body that is not a JSON object is the same protocol error as in #json.
   */
  async #bytes(path: string, body: unknown, ctx: ProviderCallContext): Promise<Buffer> {
    const timeout = ctx.timeoutMs ?? this.#opts.timeoutMs ?? 300_000;
    const res = await postForBytes(this.#pool, {
      path: this.#prefix + path,
      headers: ctx.headers ? { ...this.#baseHeaders, ...ctx.headers } : this.#baseHeaders,
      body: JSON.stringify(body),
      headersTimeout: timeout,
      bodyTimeout: timeout,
      cancel: ctx.cancel ?? cancellableOf(ctx.signal),
      maxErrorBody: MAX_ERROR_BODY,
      mapError: (err, phase) => mapTransportError(this.id, err, ctx.signal, phase),
    });
    if (res.statusCode >= 400)
      throw mapUpstreamStatus(this.id, res.statusCode, res.body.toString('utf8'), res.headers);
    const buf = res.body;
    if (!looksLikeJsonObject(buf))
      throw new PorticoError('upstream_error', `backend ${this.id} returned malformed JSON`, {
        upstream: { backend: this.id, class: 'protocol' },
      });
    return buf;
  }

  /** `terminal`: a stream without [DONE] (the Responses API) ends cleanly after such an event. */
  async #stream<T>(
    path: string,
    body: Record<string, unknown>,
    ctx: ProviderCallContext,
    terminal?: (event: unknown) => boolean,
  ): Promise<ProviderStream<T>> {
    const res = await this.#post(path, body, ctx, true);
    const id = this.id;
    const signal = ctx.signal;
    const upstreamHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') upstreamHeaders[k] = v;
    async function* iterate(): AsyncGenerator<T> {
      let done = false;
      let ended = false;
      try {
        for await (const ev of decodeSse(res.body)) {
          const data = ev.data;
          if (data === '[DONE]') {
            done = true;
            return;
          }
          if (data === '') continue;
          let parsed: unknown;
          try {
            parsed = JSON.parse(data);
          } catch {
            throw new PorticoError('upstream_error', `backend ${id} sent a malformed stream event`, {
              upstream: { backend: id, class: 'protocol' },
            });
          }
          const errObj = (parsed as { error?: unknown }).error;
          if (errObj !== undefined && errObj !== null) {
            throw mapUpstreamStatus(
              id,
              typeof (errObj as { code?: unknown }).code === 'number'
                ? (errObj as { code: number }).code
                : 502,
              data,
              {},
            );
          }
          if (terminal?.(parsed)) ended = true;
          yield parsed as T;
        }
        if (ended) {
          done = true;
          return;
        }
        throw new PorticoError('upstream_error', `backend ${id} ended the stream without [DONE]`, {
          upstream: { backend: id, class: 'stream_cut' },
        });
      } catch (err) {
        if (err instanceof PorticoError) throw err;
        if (err instanceof SseProtocolError)
          throw new PorticoError('upstream_error', `backend ${id}: ${err.message}`, {
            upstream: { backend: id, class: 'protocol' },
          });
        throw mapTransportError(id, err, signal, 'stream');
      } finally {
        if (!done) res.body.destroy();
      }
    }
    const it = iterate() as AsyncGenerator<T> & { upstreamHeaders: Record<string, string> };
    it.upstreamHeaders = upstreamHeaders;
    return it;
  }

  /**
   * Pass-through: the upstream SSE body as bytes, read by a dispatch handler (upstream-stream.ts: no
   * Readable, no AbortSignal per stream); errors mapped as #stream maps them. No closure here sees
   * the upstream handler: the error mapper is made by transportErrors, the stream is a class
   * (OpenAIRawStream). Measured: with closures over a scope holding the handler, each stream's
   * upstream objects outlived two scavenges (bench/pipeline-report.md, Session 8).
   */
  async #raw(path: string, body: Record<string, unknown>, ctx: ProviderCallContext): Promise<RawSseStream> {
    const head = await postForStream(this.#pool, {
      path: this.#prefix + path,
      headers: ctx.headers ? { ...this.#baseHeaders, ...ctx.headers } : this.#baseHeaders,
      body: JSON.stringify(body),
      headersTimeout: ctx.timeoutMs ?? this.#opts.timeoutMs ?? 300_000,
      bodyTimeout: this.#opts.streamIdleTimeoutMs ?? 180_000,
      cancel: ctx.cancel ?? cancellableOf(ctx.signal),
      maxErrorBody: MAX_ERROR_BODY,
      mapError: transportErrors(this.id, ctx),
    });
    if ('errorBody' in head)
      throw mapUpstreamStatus(this.id, head.statusCode, head.errorBody.toString('utf8'), head.headers);
    return new OpenAIRawStream(this.id, head.body, this.#opts.model, ctx);
  }

  chatBytes(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<Buffer> {
    return this.#bytes(
      '/chat/completions',
      this.#chatQuirks({ ...req, model: this.#opts.model, stream: false }),
      ctx,
    );
  }
  completionBytes(req: CompletionRequest, ctx: ProviderCallContext): Promise<Buffer> {
    return this.#bytes('/completions', { ...req, model: this.#opts.model, stream: false }, ctx);
  }

  chatStreamRaw(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<RawSseStream> {
    return this.#raw('/chat/completions', this.#chatQuirks(this.#streamBody(req)), ctx);
  }
  completionStreamRaw(req: CompletionRequest, ctx: ProviderCallContext): Promise<RawSseStream> {
    return this.#raw('/completions', this.#streamBody(req), ctx);
  }

  /** This backend's upstream sockets and requests now (drills, /admin). */
  get upstream(): UpstreamPool {
    return this.#upstream;
  }

  #withModel<T extends { model: string }>(req: T): T {
    return { ...req, model: this.#opts.model };
  }

  #streamBody<T extends { model: string; stream_options?: { include_usage?: boolean } | null }>(req: T): T {
    const body = { ...req, model: this.#opts.model, stream: true };
    if (this.#opts.forceIncludeUsage !== false)
      body.stream_options = { ...(req.stream_options ?? {}), include_usage: true };
    return body;
  }

  #chatQuirks(req: ChatCompletionRequest): ChatCompletionRequest {
    return this.#opts.quirks ? applyChatQuirks(this.#opts.quirks, req) : req;
  }
  #unsupported(what: string): PorticoError {
    return new PorticoError(
      'unsupported_operation',
      `Backend ${this.id} does not serve ${what}; route this model to a backend that does.`,
    );
  }

  chat(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<ChatCompletionResponse> {
    return this.#json(
      '/chat/completions',
      this.#chatQuirks({ ...req, model: this.#opts.model, stream: false }),
      ctx,
    );
  }
  chatStream(
    req: ChatCompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<ChatCompletionChunk>> {
    return this.#stream('/chat/completions', this.#chatQuirks(this.#streamBody(req)), ctx);
  }
  completion(req: CompletionRequest, ctx: ProviderCallContext): Promise<CompletionResponse> {
    return this.#json('/completions', { ...req, model: this.#opts.model, stream: false }, ctx);
  }
  completionStream(
    req: CompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<CompletionChunk>> {
    return this.#stream('/completions', this.#streamBody(req), ctx);
  }
  embeddings(req: EmbeddingRequest, ctx: ProviderCallContext): Promise<EmbeddingResponse> {
    if (this.#opts.quirks && !this.#opts.quirks.supportsEmbeddings)
      return Promise.reject(this.#unsupported('embeddings'));
    return this.#json('/embeddings', this.#withModel(req), ctx);
  }
  get canRerank(): boolean {
    return !this.#opts.quirks || this.#opts.quirks.supportsRerank;
  }
  rerank(req: RerankRequest, ctx: ProviderCallContext): Promise<RerankResponse> {
    if (this.#opts.quirks && !this.#opts.quirks.supportsRerank)
      return Promise.reject(this.#unsupported('rerank'));
    return this.#json(this.#opts.quirks?.rerankPath ?? '/rerank', this.#withModel(req), ctx);
  }

  async health(signal: AbortSignal): Promise<HealthResult> {
    const started = performance.now();
    try {
      const res = await this.#pool.request({
        method: 'GET',
        path: this.#prefix + (this.#opts.healthPath ?? '/models'),
        headers: this.#baseHeaders,
        signal,
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      });
      await res.body.dump();
      const ok = res.statusCode < 400;
      return {
        ok,
        latencyMs: performance.now() - started,
        ...(ok ? {} : { detail: `HTTP ${res.statusCode}` }),
      };
    } catch (err) {
      return { ok: false, latencyMs: performance.now() - started, detail: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    await this.#upstream.close();
  }
}
