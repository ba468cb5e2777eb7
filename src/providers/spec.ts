/**
 * The provider adapter interface (versioned). A provider turns canonical (OpenAI-shaped) requests
 * into calls on one upstream backend and back. Adapters translate, nothing more: no retries, no
 * quotas, no metrics — those are wrappers in routing/ and stages in pipeline/.
 *
 * Streaming contract: `chatStream` resolves only once the upstream has accepted the request
 * (status and headers received, or the in-process engine has started), so the router can still
 * retry or fall back. After that, failures surface as errors thrown from the iterator and are no
 * longer retried (bytes may have reached the client). Iteration ends when the upstream stream ends.
 * Aborting `ctx.signal` must abort the upstream call at once and release its connection.
 */
import type { Cancellable } from '../lib/abort.js';
import type { UpstreamBody } from './upstream-stream.js';
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
  Usage,
} from './openai-types.js';

export const PROVIDER_SPEC_VERSION = 1 as const;

export interface ProviderCallContext {
  /** Aborted when the client goes away, a deadline passes, or the gateway drains. */
  signal: AbortSignal;
  /** The same cancellation without an AbortSignal (the gateway's calls give it; `signal` is then made on first use). */
  cancel?: Cancellable;
  requestId: string;
  correlationId: string;
  /** Extra headers to send upstream (e.g. x-correlation-id, traceparent). */
  headers?: Record<string, string>;
  /**
   * Per-attempt timeout in ms (the router sets it); adapters may ignore it if `signal` covers it.
   * For streams the router also times the wait for the first chunk itself, through `signal`.
   */
  timeoutMs?: number;
}

export interface ProviderStream<T> extends AsyncIterable<T> {
  /** Response headers from upstream that callers may want (e.g. x-request-id), lower-case. */
  readonly upstreamHeaders?: Record<string, string>;
  /**
   * Optional: the usage the upstream has reported so far, cumulative (Anthropic sends its input
   * count in message_start and its output count in each message_delta, long before the usage
   * chunk). Read once iteration is over: a stream cut short before its usage chunk is billed by
   * these counts rather than by Portico's estimate. Undefined until the upstream reported any.
   */
  readonly reportedUsage?: () => Usage | undefined;
}

/**
 * An upstream OpenAI SSE stream handed over as bytes (pass-through): the gateway forwards them as
 * they arrive and looks inside only where it must act (http/pass-through.ts). Resolved, like
 * `chatStream`, once the upstream accepted the request. Error mapping stays with the provider.
 */
export interface RawSseStream {
  /** The upstream body, not yet read (paused until a sink is set and resumed). */
  readonly body: UpstreamBody;
  /** Response headers from upstream, lower-case. */
  readonly upstreamHeaders: Record<string, string>;
  /** The model name the backend writes in each chunk's `model` (what the gateway sent upstream). */
  readonly upstreamModel: string;
  /** The catalog error for a failure while reading `body` (transport, idle timeout, abort). */
  mapError(err: unknown): Error;
  /** The catalog error for an upstream error event (`data: {"error": ...}`); `data` is its JSON. */
  eventError(data: string): Error;
  /** The catalog error for a stream that ended without [DONE]. */
  cut(): Error;
  /** A malformed event (not JSON where the gateway had to read it). */
  malformed(): Error;
}

export interface HealthResult {
  ok: boolean;
  latencyMs: number;
  detail?: string;
}

/** The upstream sockets of an HTTP provider (absent for in-process ones: sim, engine). */
export interface UpstreamConnections {
  /** Sockets open now (in use or idle). */
  readonly openConnections: number;
  /** Sockets closed because they never carried a request (see providers/upstream-pool.ts). */
  readonly reaped: number;
}

/**
 * A backend that speaks the OpenAI Responses API itself (`responses_api: native`): Responses
 * request bodies go through as they are (the adapter sets the upstream model name).
 */
export interface NativeResponses {
  create(body: Record<string, unknown>, ctx: ProviderCallContext): Promise<Record<string, unknown>>;
  /** Typed events (`{type, sequence_number, ...}`); ends after the terminal event. */
  stream(
    body: Record<string, unknown>,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<Record<string, unknown>>>;
}

export interface Provider {
  readonly specVersion: typeof PROVIDER_SPEC_VERSION;
  /** Provider kind, e.g. 'openai', 'anthropic', 'engine', 'sim'. */
  readonly kind: string;
  /** Stable backend id (from config), used in metrics, logs and health. */
  readonly id: string;

  chat(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<ChatCompletionResponse>;
  chatStream(
    req: ChatCompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<ChatCompletionChunk>>;
  completion(req: CompletionRequest, ctx: ProviderCallContext): Promise<CompletionResponse>;
  completionStream(
    req: CompletionRequest,
    ctx: ProviderCallContext,
  ): Promise<ProviderStream<CompletionChunk>>;
  /**
   * Optional (OpenAI-compatible backends): the same streams as bytes, for pass-through. Present
   * only when the backend speaks OpenAI SSE as the client does.
   */
  chatStreamRaw?(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<RawSseStream>;
  completionStreamRaw?(req: CompletionRequest, ctx: ProviderCallContext): Promise<RawSseStream>;
  /**
   * Optional (OpenAI-compatible backends): the non-streaming answer as the upstream's bytes (a JSON
   * object, checked to look like one), for forwarding without a parse and a re-serialisation.
   */
  chatBytes?(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<Buffer>;
  completionBytes?(req: CompletionRequest, ctx: ProviderCallContext): Promise<Buffer>;
  embeddings(req: EmbeddingRequest, ctx: ProviderCallContext): Promise<EmbeddingResponse>;
  /** Optional: providers that cannot rerank throw PorticoError('unsupported_operation'). */
  rerank(req: RerankRequest, ctx: ProviderCallContext): Promise<RerankResponse>;
  /**
   * Optional: false when rerank() always throws unsupported_operation (so the 501 can name the
   * models that can rerank); absent means it may.
   */
  readonly canRerank?: boolean;
  /**
   * Optional: the backend's own prompt-token count for a chat request (Anthropic's
   * /v1/messages/count_tokens). Without it, Portico counts with its tokenizer.
   */
  countTokens?(req: ChatCompletionRequest, ctx: ProviderCallContext): Promise<number>;
  /** Optional: native Responses API pass-through (only backends configured `responses_api: native`). */
  readonly responses?: NativeResponses;
  /** Active health probe (cheap). */
  health(signal: AbortSignal): Promise<HealthResult>;
  /** Release pools, sequences, timers. */
  close(): Promise<void>;
  /** HTTP providers: their connection pool, shown by /ready and GET /admin/backends. */
  readonly upstream?: UpstreamConnections;
}
