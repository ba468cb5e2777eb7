/** Builds the RequestContext for a Fastify request and ties its AbortController to the client connection. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PorticoError } from '../errors/portico-error.js';
import type { Gateway } from '../app.js';
import { createContext, type KeyMemo, type RequestContext, type RouteName } from '../pipeline/context.js';
import { finishRequest } from '../pipeline/run.js';

/** Each client connection's KeyMemo (authenticate.ts), dropped with the socket. */
const keyMemos = new WeakMap<object, KeyMemo>();
function keyMemoOf(socket: object): KeyMemo {
  let memo = keyMemos.get(socket);
  if (memo === undefined) {
    memo = { key: '', hash: '' };
    keyMemos.set(socket, memo);
  }
  return memo;
}

declare module 'fastify' {
  interface FastifyRequest {
    porticoId: string;
    correlationId: string;
    porticoCtx: RequestContext | null;
  }
}

export function contextFor(
  gw: Gateway,
  request: FastifyRequest,
  reply: FastifyReply,
  route: RouteName,
  endpoint: string,
): RequestContext {
  const ctx = createContext({
    requestId: request.porticoId,
    correlationId: request.correlationId,
    route,
    method: request.method,
    endpoint,
    clientIp: request.ip,
    snapshot: gw.snapshot,
  });
  request.porticoCtx = ctx;
  ctx.keyMemo = keyMemoOf(request.raw.socket);
  const asked = request.headers['x-portico-priority'];
  if (typeof asked === 'string') ctx.priority = asked;
  if (gw.tracing)
    ctx.trace = gw.tracing.startRequest({
      method: request.method,
      endpoint,
      requestId: ctx.requestId,
      correlationId: ctx.correlationId,
      headers: request.headers,
    });
  if (gw.audit?.bodies) {
    ctx.captureOutput = true;
    ctx.auditRequest = request.body;
  }
  const user = request.headers['x-portico-user'];
  if (typeof user === 'string' && user !== '') ctx.stickyUser = user.slice(0, 256);
  const cc = request.headers['cache-control'];
  if (typeof cc === 'string') ctx.cacheControl = cc;
  const controller = ctx.controller;
  const maxMs = ctx.snapshot.config.server.request_timeout_ms;
  const timer = setTimeout(() => {
    if (!controller.aborted) {
      controller.abort(
        new PorticoError(
          'upstream_timeout',
          `The request took longer than the maximum of ${Math.round(maxMs / 1000)} s and was stopped.`,
        ),
      );
    }
  }, maxMs);
  timer.unref();
  // One listener for the connection's end: clear the time limit, and if the client went away
  // before we finished, abort upstream work at once. (A finished request has no upstream work
  // left; aborting it anyway would only build a DOMException.) A response that can no longer be
  // written never gets Fastify's onResponse, where requests are finished: a request whose handler
  // is done is finished here (its in-flight slot, quota hold and tokens/min charge given back);
  // one whose handler still runs is finished when it settles (tenantRoute), streams by their writer.
  reply.raw.once('close', () => {
    clearTimeout(timer);
    if (ctx.finished || reply.raw.writableFinished) return;
    ctx.clientGone = true;
    if (!controller.aborted) controller.abort();
    if (ctx.handlerDone) finishRequest(gw.deps, ctx, CLIENT_CLOSED);
  });
  return ctx;
}

/** The status a request whose client left is recorded with (nginx's "client closed request"). */
export const CLIENT_CLOSED = 499;

/**
 * The route's handler settled: when its client already left, the request is finished now (see
 * contextFor's close listener), else by onResponse or the stream writer as usual.
 */
export function handlerSettled(gw: Gateway, ctx: RequestContext): void {
  ctx.handlerDone = true;
  if (ctx.clientGone && !ctx.finished) finishRequest(gw.deps, ctx, CLIENT_CLOSED);
}
