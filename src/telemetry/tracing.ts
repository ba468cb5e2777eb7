/**
 * OpenTelemetry traces: one root span per request (kind SERVER, parent taken from an incoming W3C
 * `traceparent`), child spans for the pipeline stages (authenticate, admission, route, cache
 * lookup, each provider attempt, respond), exported over OTLP/HTTP in batches off the request
 * path. Provider attempt spans (kind CLIENT) carry the GenAI semantic conventions' `gen_ai.*`
 * attributes, and their context goes upstream as `traceparent`. Sampling: parent-based, new
 * traces at `sample_ratio`. Unsampled requests cost one sampler decision and nothing else: no
 * span objects are kept on the context.
 *
 * This module is what the pipeline imports: types from @opentelemetry/api and the stage helpers,
 * which do nothing when a request carries no trace. The OpenTelemetry SDK and the OTLP exporter
 * (tracing-sdk.ts, ~15 MB of RSS) are loaded by createTracing(), i.e. only when
 * telemetry.tracing.enabled is true.
 */
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import type { TelemetryConfig } from '../config/schema.js';
import type { Usage } from '../providers/openai-types.js';

/** What needs the OpenTelemetry API's values (enums, propagator): supplied by tracing-sdk.ts. */
export interface TraceOps {
  /** Record the error on the span and set its status to ERROR. */
  fail(span: Span, err: unknown): void;
  /** Start a CLIENT span under the request's root; returns it with its `traceparent` headers. */
  startClient(
    t: RequestTrace,
    name: string,
    attributes: Attributes,
  ): { span: Span; headers: Record<string, string> };
  /** Set the span's status to ERROR. */
  markError(span: Span): void;
}

export interface RequestTrace {
  readonly tracer: Tracer;
  readonly ops: TraceOps;
  readonly root: Span;
  readonly rootCtx: Context;
  respond?: Span;
}

/** What the tracing helpers need from a request (the pipeline's RequestContext has it). */
export interface Traced {
  trace?: RequestTrace | undefined;
}

/** Tracing as configured in telemetry.tracing (an OTLP/HTTP exporter in batches). */
export interface Tracing {
  /** Start the root span; undefined when the request is not sampled. */
  startRequest(r: {
    method: string;
    endpoint: string;
    requestId: string;
    correlationId: string;
    headers: Record<string, string | string[] | undefined>;
  }): RequestTrace | undefined;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Load the OpenTelemetry SDK and exporter (only now) and set up tracing. */
export async function createTracing(cfg: TelemetryConfig['tracing'], version: string): Promise<Tracing> {
  const { OtelTracing } = await import('./tracing-sdk.js');
  return new OtelTracing(cfg, version);
}

/**
 * Run `fn` inside a child span of the request (or just run it when the request is not traced).
 * Not an async function: an untraced stage hands back `fn`'s own promise (an async wrapper returning
 * a promise adopts it through two more microtask turns and two more promises, on every request).
 */
export function withStage<T>(
  ctx: Traced,
  name: string,
  fn: () => Promise<T> | T,
  attributes?: Attributes,
): Promise<T> {
  const t = ctx.trace;
  if (!t) {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
  return tracedStage(t, name, fn, attributes);
}

async function tracedStage<T>(
  t: RequestTrace,
  name: string,
  fn: () => Promise<T> | T,
  attributes: Attributes | undefined,
): Promise<T> {
  const span = t.tracer.startSpan(name, attributes ? { attributes } : {}, t.rootCtx);
  try {
    return await fn();
  } catch (err) {
    t.ops.fail(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Synchronous variant of withStage. */
export function stageSync<T>(ctx: Traced, name: string, fn: () => T, attributes?: Attributes): T {
  const t = ctx.trace;
  if (!t) return fn();
  const span = t.tracer.startSpan(name, attributes ? { attributes } : {}, t.rootCtx);
  try {
    return fn();
  } catch (err) {
    t.ops.fail(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** One provider attempt: a CLIENT span with gen_ai.* attributes whose context goes upstream. */
export interface AttemptSpan {
  /** `traceparent` (and `tracestate`) for the upstream request. */
  readonly headers: Record<string, string>;
  ok(result?: { usage?: Usage | null | undefined; model?: string; finishReasons?: string[] }): void;
  fail(err: unknown): void;
}

export type GenAiOperation = 'chat' | 'text_completion' | 'embeddings' | 'rerank';

export function startAttempt(
  ctx: Traced,
  a: { backend: string; providerKind: string; model: string; operation: GenAiOperation; attempt?: number },
  request?: { max_tokens?: number | null; temperature?: number | null; top_p?: number | null },
): AttemptSpan | undefined {
  const t = ctx.trace;
  if (!t) return undefined;
  const attributes: Attributes = {
    'gen_ai.operation.name': a.operation,
    'gen_ai.system': a.providerKind,
    'gen_ai.provider.name': a.providerKind,
    'gen_ai.request.model': a.model,
    'portico.backend': a.backend,
  };
  if (a.attempt !== undefined) attributes['portico.attempt'] = a.attempt;
  if (request?.max_tokens != null) attributes['gen_ai.request.max_tokens'] = request.max_tokens;
  if (request?.temperature != null) attributes['gen_ai.request.temperature'] = request.temperature;
  if (request?.top_p != null) attributes['gen_ai.request.top_p'] = request.top_p;
  const { span, headers } = t.ops.startClient(t, `${a.operation} ${a.model}`, attributes);
  let done = false;
  return {
    headers,
    ok(result) {
      if (done) return;
      done = true;
      const u = result?.usage;
      if (u) {
        span.setAttribute('gen_ai.usage.input_tokens', u.prompt_tokens);
        span.setAttribute('gen_ai.usage.output_tokens', u.completion_tokens);
      }
      if (result?.model) span.setAttribute('gen_ai.response.model', result.model);
      if (result?.finishReasons?.length)
        span.setAttribute('gen_ai.response.finish_reasons', result.finishReasons);
      span.end();
    },
    fail(err) {
      if (done) return;
      done = true;
      t.ops.fail(span, err);
      span.end();
    },
  };
}

/** Mark the start of writing the response (serialisation, compression, streaming). */
export function startRespond(ctx: Traced): void {
  const t = ctx.trace;
  if (t && !t.respond) t.respond = t.tracer.startSpan('respond', {}, t.rootCtx);
}

/** End the request's spans with what is known at the end. */
export function endRequestTrace(ctx: Traced, status: number, attributes: Attributes): void {
  const t = ctx.trace;
  if (!t) return;
  t.respond?.end();
  t.root.setAttributes(attributes);
  t.root.setAttribute('http.response.status_code', status);
  if (status >= 500) t.ops.markError(t.root);
  t.root.end();
}
