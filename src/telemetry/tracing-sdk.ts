/**
 * The OpenTelemetry SDK side of tracing.ts: tracer provider, parent-based ratio sampler, batch
 * span processor and OTLP/HTTP exporter. Imported dynamically by createTracing(), so a gateway
 * with tracing off never loads the SDK.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { TelemetryConfig } from '../config/schema.js';
import type { RequestTrace, TraceOps, Tracing } from './tracing.js';

const propagator = new W3CTraceContextPropagator();

const ops: TraceOps = {
  fail(span: Span, err: unknown): void {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  },
  startClient(t: RequestTrace, name: string, attributes: Attributes) {
    const span = t.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, t.rootCtx);
    const headers: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    return { span, headers };
  },
  markError(span: Span): void {
    span.setStatus({ code: SpanStatusCode.ERROR });
  },
};

export class OtelTracing implements Tracing {
  readonly #provider: BasicTracerProvider;
  readonly #tracer: Tracer;

  constructor(cfg: TelemetryConfig['tracing'], version: string) {
    const exporter = new OTLPTraceExporter({ url: cfg.endpoint, headers: cfg.headers, timeoutMillis: 5_000 });
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': cfg.service_name, 'service.version': version }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sample_ratio) }),
      spanProcessors: [
        new BatchSpanProcessor(exporter, {
          scheduledDelayMillis: 1_000,
          maxQueueSize: 4_096,
          maxExportBatchSize: 512,
        }),
      ],
    });
    this.#tracer = this.#provider.getTracer('portico', version);
  }

  startRequest(r: Parameters<Tracing['startRequest']>[0]): RequestTrace | undefined {
    const parent = propagator.extract(ROOT_CONTEXT, r.headers, defaultTextMapGetter);
    const root = this.#tracer.startSpan(
      `${r.method} ${r.endpoint}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': r.method,
          'http.route': r.endpoint,
          'portico.request_id': r.requestId,
          'portico.correlation_id': r.correlationId,
        },
      },
      parent,
    );
    if (!root.isRecording()) return undefined;
    return { tracer: this.#tracer, ops, root, rootCtx: trace.setSpan(ROOT_CONTEXT, root) };
  }

  async flush(): Promise<void> {
    await this.#provider.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }
}
