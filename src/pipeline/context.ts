/**
 * RequestContext: everything one request carries through the pipeline stages. Built once at the
 * edge, never shared between requests.
 */
import type { KeyEntry, Snapshot, TenantRuntime } from './snapshot.js';
import type { InflightLease, QuotaReservation, WindowCharge } from '../state/index.js';
import type { Usage } from '../providers/openai-types.js';
import type { RequestTrace } from '../telemetry/tracing.js';

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

export interface RequestContext {
  readonly requestId: string;
  readonly correlationId: string;
  readonly route: RouteName;
  readonly method: string;
  /** Route pattern, for the seed-compatible http_* metrics. */
  readonly endpoint: string;
  readonly clientIp: string;
  /** performance.now() at arrival */
  readonly startedAt: number;
  readonly controller: AbortController;
  readonly snapshot: Snapshot;
  tenant?: TenantRuntime;
  keyId?: string;
  /** Model alias asked for (after validation it is a configured alias). */
  model?: string;
  backend?: string;
  usage?: Usage;
  /** Usage was counted by Portico, not reported by the upstream. */
  usageEstimated?: boolean;
  stream: boolean;
  /** performance.now() when the first content reached the client (streams). */
  firstTokenAt?: number;
  /** Set once when the request is finished (accounting runs exactly once). */
  finished: boolean;
  key?: KeyEntry;
  /** A lower priority class asked for by the request (x-portico-priority). */
  priority?: string;
  /** Admission holds to settle when the request finishes. */
  admission?: AdmissionHolds;
  /** Headers to add to the response whatever its outcome (rate-limit state, ...). */
  responseHeaders?: Record<string, string>;
  /** The answer was cut short (stream cancelled by the client or broken off upstream): billed for what was delivered. */
  partial?: boolean;
  /** Streamed output text, kept only to estimate usage when the upstream reports none. */
  outputChars?: string;
  /** Prompt tokens as Portico counted them (for estimates), when it had to count. */
  promptTokensEstimate?: number;
  /** Prompt prefix for prefix-affinity balancing (the tenant's system prompt and the start of the conversation). */
  affinityKey?: string;
  /** Sticky identity for A/B splits (the x-portico-user header). */
  stickyUser?: string;
  /** A/B split: the variant alias chosen for this request. */
  variant?: string;
  /** The model of the fallback chain that answered, when not the requested one. */
  fallbackModel?: string;
  /** The error the client got (set where the error response or error event is written). */
  error?: { code: string; message: string };
  /** Total-time limit of this request (model or team route timeout); cleared when it finishes. */
  deadlineTimer?: NodeJS.Timeout;
  /** The cache answered (set by the cache stage): from a tier, or by joining an identical request in flight. */
  cacheHit?: 'l1' | 'l2' | 'coalesced' | undefined;
  /** This request was answered by joining an identical one in flight (single-flight). */
  cacheCoalesced?: boolean;
  /** The client's Cache-Control header (no-cache: skip lookup; no-store: do not store). */
  cacheControl?: string;
  /** Cost of this request in USD (set by accounting). */
  costUsd?: number;
  /** Set once by recordUsage (run.ts): the usage accounted, and the quota commit it implies. */
  accounting?: {
    usage: { prompt: number; completion: number; estimated: boolean } | undefined;
    /** Tokens to commit to the quota reservation; undefined: release it unused. */
    quotaActual: number | undefined;
    /** The ledger record was journaled with that quota commit (confirm it once done). */
    quotaJournaled: boolean;
  };
  /** Tokens as accounted (upstream usage or Portico's estimate), set by accounting. */
  accountedTokens?: { input: number; output: number; estimated: boolean };
  /** Request/response bodies for the audit trail, already redacted; set only when audit bodies are enabled. */
  auditBodies?: { request?: string; response?: string };
  /** The client's request body, kept only when the audit log stores bodies. */
  auditRequest?: unknown;
  /** Keep the generated text in `outputText` (audit bodies). */
  captureOutput?: boolean;
  /** The generated text, when captureOutput is set. */
  outputText?: string;
  /**
   * Pass-through streams: the text delivered to the client so far, decoded on demand from the
   * forwarded bytes (for billing a cancelled or failed stream by what reached the client).
   */
  deliveredText?: () => string;
  /** The request's trace (root span and stage spans); absent when tracing is off or not sampled. */
  trace?: RequestTrace | undefined;
}

export interface AdmissionHolds {
  leases: InflightLease[];
  charges: WindowCharge[];
  reservation?: QuotaReservation;
  /** Tokens charged up front (prompt estimate + max output). */
  estimate: number;
  renew?: NodeJS.Timeout;
}

export interface ContextInit {
  requestId: string;
  correlationId: string;
  route: RouteName;
  method: string;
  endpoint: string;
  clientIp: string;
  snapshot: Snapshot;
  controller?: AbortController;
}

/**
 * The context's one shape: every field, optional ones included, is set in the constructor in the
 * same order, so every stage that reads or sets a field meets a single hidden class (V8) instead of
 * one per order in which optional fields were added — the pipeline's property accesses stay
 * monomorphic. A field added to RequestContext must be added here too (the class implements it).
 */
class Context implements RequestContext {
  readonly requestId: string;
  readonly correlationId: string;
  readonly route: RouteName;
  readonly method: string;
  readonly endpoint: string;
  readonly clientIp: string;
  readonly startedAt: number;
  readonly controller: AbortController;
  readonly snapshot: Snapshot;
  tenant: TenantRuntime | undefined = undefined;
  keyId: string | undefined = undefined;
  model: string | undefined = undefined;
  backend: string | undefined = undefined;
  usage: Usage | undefined = undefined;
  usageEstimated: boolean | undefined = undefined;
  stream = false;
  firstTokenAt: number | undefined = undefined;
  finished = false;
  key: KeyEntry | undefined = undefined;
  priority: string | undefined = undefined;
  admission: AdmissionHolds | undefined = undefined;
  responseHeaders: Record<string, string> | undefined = undefined;
  partial: boolean | undefined = undefined;
  outputChars: string | undefined = undefined;
  promptTokensEstimate: number | undefined = undefined;
  affinityKey: string | undefined = undefined;
  stickyUser: string | undefined = undefined;
  variant: string | undefined = undefined;
  fallbackModel: string | undefined = undefined;
  error: { code: string; message: string } | undefined = undefined;
  deadlineTimer: NodeJS.Timeout | undefined = undefined;
  cacheHit: 'l1' | 'l2' | 'coalesced' | undefined = undefined;
  cacheCoalesced: boolean | undefined = undefined;
  cacheControl: string | undefined = undefined;
  costUsd: number | undefined = undefined;
  accounting: RequestContext['accounting'] = undefined;
  accountedTokens: RequestContext['accountedTokens'] = undefined;
  auditBodies: RequestContext['auditBodies'] = undefined;
  auditRequest: unknown = undefined;
  captureOutput: boolean | undefined = undefined;
  outputText: string | undefined = undefined;
  deliveredText: (() => string) | undefined = undefined;
  trace: RequestTrace | undefined = undefined;

  constructor(init: ContextInit) {
    this.requestId = init.requestId;
    this.correlationId = init.correlationId;
    this.route = init.route;
    this.method = init.method;
    this.endpoint = init.endpoint;
    this.clientIp = init.clientIp;
    this.startedAt = performance.now();
    this.controller = init.controller ?? new AbortController();
    this.snapshot = init.snapshot;
  }
}

export function createContext(init: ContextInit): RequestContext {
  return new Context(init);
}

/** Headers sent upstream for correlation. */
export function upstreamHeaders(ctx: RequestContext): Record<string, string> {
  return { 'x-request-id': ctx.requestId, 'x-correlation-id': ctx.correlationId };
}
