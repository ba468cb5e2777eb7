/**
 * RequestContext: everything one request carries through the pipeline stages. Built once at the
 * edge, never shared between requests.
 */
import type { KeyEntry, Snapshot, TenantRuntime } from './snapshot.js';
import type { InflightLease, QuotaReservation, WindowCharge } from '../state/index.js';
import type { Usage } from '../providers/openai-types.js';
import type { RequestTrace } from '../telemetry/tracing.js';
import { Cancel } from '../lib/abort.js';

export type RouteName =
  | 'chat'
  | 'completions'
  | 'embeddings'
  | 'rerank'
  | 'messages'
  | 'responses'
  | 'count_tokens'
  | 'ask'
  | 'predict'
  | 'models'
  | 'info';

export interface AdmissionHolds {
  leases: InflightLease[];
  charges: WindowCharge[];
  reservation?: QuotaReservation;
  /** Tokens charged up front (prompt estimate + max output). */
  estimate: number;
  renew?: NodeJS.Timeout;
  /** Set by releaseHolds: a slot a renewal takes again afterwards is given back at once. */
  released?: boolean;
}

export interface ContextInit {
  requestId: string;
  correlationId: string;
  route: RouteName;
  method: string;
  endpoint: string;
  clientIp: string;
  snapshot: Snapshot;
  controller?: Cancel;
}

/**
 * The context's one shape: a class whose every field, optional ones included, is defined when it
 * is constructed, in one order, so every stage that reads or sets a field meets a single hidden
 * class (V8) instead of one per order in which optional fields were added — the pipeline's
 * property accesses stay monomorphic. A new field gets an initializer like the others.
 */
export class RequestContext {
  readonly requestId: string;
  readonly correlationId: string;
  readonly route: RouteName;
  readonly method: string;
  /** Route pattern, for the seed-compatible http_* metrics. */
  readonly endpoint: string;
  readonly clientIp: string;
  /** performance.now() at arrival */
  readonly startedAt: number;
  readonly controller: Cancel;
  readonly snapshot: Snapshot;
  tenant?: TenantRuntime = undefined;
  keyId?: string = undefined;
  /** Model alias asked for (after validation it is a configured alias). */
  model?: string = undefined;
  backend?: string = undefined;
  usage?: Usage = undefined;
  /** Usage was counted by Portico, not reported by the upstream. */
  usageEstimated?: boolean = undefined;
  stream = false;
  /** performance.now() when the first content reached the client (streams). */
  firstTokenAt?: number = undefined;
  /** Set once when the request is finished (accounting runs exactly once). */
  finished = false;
  /** The client's connection closed before its response was written. */
  clientGone = false;
  /** The route's handler settled (its response is being sent, or never will be). */
  handlerDone = false;
  key?: KeyEntry = undefined;
  /** A lower priority class asked for by the request (x-portico-priority). */
  priority?: string = undefined;
  /** Admission holds to settle when the request finishes. */
  admission?: AdmissionHolds = undefined;
  /** Headers to add to the response whatever its outcome (rate-limit state, ...). */
  responseHeaders?: Record<string, string> = undefined;
  /** The answer was cut short (stream cancelled by the client or broken off upstream): billed for what was delivered. */
  partial?: boolean = undefined;
  /**
   * The usage the upstream reported before its stream ended (Anthropic: message_start's input,
   * the last message_delta's output), set by dispatch: a stream cut short before its usage chunk
   * is billed by these counts (run.ts accountedUsage) rather than estimated.
   */
  reportedUsage?: Usage = undefined;
  /** Streamed output text, kept only to estimate usage when the upstream reports none. */
  outputChars?: string = undefined;
  /** Prompt tokens as Portico counted them (for estimates), when it had to count. */
  promptTokensEstimate?: number = undefined;
  /** Prompt prefix for prefix-affinity balancing (the tenant's system prompt and the start of the conversation). */
  affinityKey?: string = undefined;
  /** Sticky identity for A/B splits (the x-portico-user header). */
  stickyUser?: string = undefined;
  /** A/B split: the variant alias chosen for this request. */
  variant?: string = undefined;
  /** The model of the fallback chain that answered, when not the requested one. */
  fallbackModel?: string = undefined;
  /** The error the client got (set where the error response or error event is written). */
  error?: { code: string; message: string } = undefined;
  /** Total-time limit of this request (model or team route timeout); cleared when it finishes. */
  deadlineTimer?: NodeJS.Timeout = undefined;
  /** When deadlineTimer fires (performance.now() ms): the earliest of the limits met so far. */
  deadlineAt?: number = undefined;
  /** The cache answered (set by the cache stage): from a tier, or by joining an identical request in flight. */
  cacheHit?: 'l1' | 'l2' | 'coalesced' | undefined = undefined;
  /** This request was answered by joining an identical one in flight (single-flight). */
  cacheCoalesced?: boolean = undefined;
  /** The client's Cache-Control header (no-cache: skip lookup; no-store: do not store). */
  cacheControl?: string = undefined;
  /** Cost of this request in USD (set by accounting). */
  costUsd?: number = undefined;
  /** Set once by recordUsage (run.ts): the usage accounted, and the quota commit it implies. */
  accounting?: {
    usage: { prompt: number; completion: number; estimated: boolean } | undefined;
    /** Tokens to commit to the quota reservation; undefined: release it unused. */
    quotaActual: number | undefined;
    /** The ledger record was journaled with that quota commit (confirm it once done). */
    quotaJournaled: boolean;
  } = undefined;
  /** Tokens as accounted (upstream usage or Portico's estimate), set by accounting. */
  accountedTokens?: { input: number; output: number; estimated: boolean } = undefined;
  /** Request/response bodies for the audit trail, already redacted; set only when audit bodies are enabled. */
  auditBodies?: { request?: string; response?: string } = undefined;
  /** The client's request body, kept only when the audit log stores bodies. */
  auditRequest?: unknown = undefined;
  /** Keep the generated text in `outputText` (audit bodies). */
  captureOutput?: boolean = undefined;
  /** The generated text, when captureOutput is set. */
  outputText?: string = undefined;
  /**
   * Pass-through streams: the text delivered to the client so far, decoded on demand from the
   * forwarded bytes (for billing a cancelled or failed stream by what reached the client).
   */
  deliveredText?: () => string = undefined;
  /** The request's trace (root span and stage spans); absent when tracing is off or not sampled. */
  trace?: RequestTrace | undefined = undefined;
  /** The connection's last key and its digest (authenticate.ts): a keep-alive client hashes its key once. */
  keyMemo?: KeyMemo = undefined;

  constructor(init: ContextInit) {
    this.requestId = init.requestId;
    this.correlationId = init.correlationId;
    this.route = init.route;
    this.method = init.method;
    this.endpoint = init.endpoint;
    this.clientIp = init.clientIp;
    this.startedAt = performance.now();
    this.controller = init.controller ?? new Cancel();
    this.snapshot = init.snapshot;
  }
}

/**
 * The last API key presented on one client connection and its sha256 digest, owned by the
 * connection (http/request-context.ts): lives as long as the socket, never shared between sockets.
 */
export interface KeyMemo {
  key: string;
  hash: string;
}

export function createContext(init: ContextInit): RequestContext {
  return new RequestContext(init);
}

/** Headers sent upstream for correlation. */
export function upstreamHeaders(ctx: RequestContext): Record<string, string> {
  return { 'x-request-id': ctx.requestId, 'x-correlation-id': ctx.correlationId };
}
