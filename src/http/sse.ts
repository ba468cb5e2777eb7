/**
 * Writes a stream of chunks to the client as Server-Sent Events. Handles backpressure, records
 * time-to-first-token and inter-token latency, sends a well-formed error event if the upstream
 * fails mid-stream, and aborts the upstream when the client goes away.
 */
import type { FastifyReply } from 'fastify';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { SSE_DONE } from '../lib/sse.js';
import type { RequestContext } from '../pipeline/context.js';
import { finishRequest, recordUsage, type PipelineDeps } from '../pipeline/run.js';
import { ANONYMOUS_TENANT, UNKNOWN_MODEL } from '../telemetry/metrics.js';
import { toPorticoError } from './errors.js';
import { startRespond } from '../telemetry/tracing.js';
import type { PorticoError } from '../errors/portico-error.js';

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** How a stream is written: OpenAI's `data:` lines ending in [DONE] by default. */
export interface SseFormat<C> {
  encode(chunk: C): string;
  /** Written after the last chunk. */
  end: string;
  /** A well-formed error event for a failure mid-way. */
  error(err: PorticoError): string;
}

const OPENAI_SSE: SseFormat<unknown> = {
  encode: (chunk) => `data: ${JSON.stringify(chunk)}\n\n`,
  end: SSE_DONE,
  error: (pe) => `data: ${JSON.stringify(pe.toBody())}\n\n`,
};

export async function sendSse<C = unknown>(
  deps: PipelineDeps,
  reply: FastifyReply,
  ctx: RequestContext,
  chunks: AsyncIterable<C>,
  format: SseFormat<C> = OPENAI_SSE,
): Promise<void> {
  if (ctx.responseHeaders) reply.headers(ctx.responseHeaders);
  startRespond(ctx);
  reply.hijack();
  const res = reply.raw;
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(reply.getHeaders()))
    if (v !== undefined) headers[k] = typeof v === 'number' ? String(v) : v;
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  headers['x-accel-buffering'] = 'no';
  res.writeHead(200, headers);
  const tenant = ctx.tenant?.id ?? ANONYMOUS_TENANT;
  const model = ctx.model ?? UNKNOWN_MODEL;
  const ttft = deps.metrics.ttft.labels(tenant, model);
  const itl = deps.metrics.itl.labels(tenant, model);
  let status = 200;
  let last = 0;
  try {
    for await (const chunk of chunks) {
      if (res.destroyed) break;
      const now = performance.now();
      if (ctx.firstTokenAt === undefined) {
        ctx.firstTokenAt = now;
        ttft.observe((now - ctx.startedAt) / 1000);
      } else {
        itl.observe((now - last) / 1000);
      }
      last = now;
      if (!res.write(format.encode(chunk))) await waitDrain(res);
    }
    if (res.destroyed) status = 499;
    else {
      recordUsage(deps, ctx, status); // journaled before the closing event: see recordUsage
      res.end(format.end);
    }
  } catch (err) {
    const pe = toPorticoError(err, ctx.controller.signal);
    status = pe.status;
    ctx.error = { code: pe.code, message: pe.message };
    if (pe.status >= 500)
      deps.logger.warn({ requestId: ctx.requestId, code: pe.code, err: pe.message }, 'stream failed mid-way');
    if (!res.destroyed) {
      recordUsage(deps, ctx, status);
      res.end(format.error(pe));
    }
  } finally {
    finishRequest(deps, ctx, status);
  }
}
