/**
 * RequestContext: everything one request carries through the pipeline stages. Built once at the
 * edge, never shared between requests.
 */
import type { Snapshot, TenantRuntime } from './snapshot.js';
import type { Usage } from '../providers/openai-types.js';

export type RouteName =
  'chat' | 'completions' | 'embeddings' | 'rerank' | 'messages' | 'ask' | 'predict' | 'models' | 'info';

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
}

export function createContext(init: {
  requestId: string;
  correlationId: string;
  route: RouteName;
  method: string;
  endpoint: string;
  clientIp: string;
  snapshot: Snapshot;
  controller?: AbortController;
}): RequestContext {
  return {
    ...init,
    startedAt: performance.now(),
    controller: init.controller ?? new AbortController(),
    stream: false,
    finished: false,
  };
}

/** Headers sent upstream for correlation. */
export function upstreamHeaders(ctx: RequestContext): Record<string, string> {
  return { 'x-request-id': ctx.requestId, 'x-correlation-id': ctx.correlationId };
}
