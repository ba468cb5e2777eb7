/**
 * The edge below Fastify: connection caps (per replica and per client IP) and what a client that
 * breaks HTTP gets (a slow sender past its deadline, oversize headers, malformed requests). These
 * errors happen before a request exists, so they are written as raw HTTP/1.1 responses, in the
 * catalog's OpenAI shape, and the socket is closed.
 *
 * Deadlines are Node's own (server.headersTimeout / server.requestTimeout, checked every
 * connectionsCheckingInterval): no timer per request on the hot path.
 */
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { PorticoError } from '../errors/portico-error.js';
import type { ErrorCode } from '../errors/catalog.js';
import type { Counter, Gauge } from 'prom-client';
import { newRequestId } from '../lib/ids.js';

export interface ConnectionLimits {
  maxConnections: number;
  /** 0 = no per-IP cap. */
  maxPerIp: number;
}

export interface EdgeMetrics {
  openConnections: Gauge;
  connectionsRefused: Counter<'reason'>;
}

/** Set on a socket refused at accept time: the request parser may still emit a request on it, which must not run. */
const REFUSED = Symbol('portico.refused');
/** The socket's latest request (headers received): tells a missed body deadline from a missed headers deadline. */
const CURRENT = Symbol('portico.current');

interface EdgeSocket extends Socket {
  [REFUSED]?: boolean;
  [CURRENT]?: IncomingMessage;
}

/** The security headers every answer carries (with TLS, HSTS too): Fastify's and the raw ones below. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};
const WITH_HSTS: Readonly<Record<string, string>> = {
  ...SECURITY_HEADERS,
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};

export function securityHeadersFor(tls: boolean): Readonly<Record<string, string>> {
  return tls ? WITH_HSTS : SECURITY_HEADERS;
}

/**
 * The raw HTTP/1.1 bytes of an error answered before (or instead of) a request, connection closed:
 * with the security headers and an `x-request-id` (also the correlation id) like every answer.
 */
export function rawErrorResponse(pe: PorticoError, tls = false): string {
  const body = JSON.stringify(pe.toBody());
  const id = newRequestId();
  const headers: Record<string, string> = {
    ...securityHeadersFor(tls),
    'x-request-id': id,
    'x-correlation-id': id,
    ...pe.headers,
  };
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${pe.status} ${STATUS_CODES[pe.status] ?? 'Error'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `${extra}connection: close\r\n\r\n${body}`
  );
}

function refuse(socket: Socket, pe: PorticoError, tls: boolean): void {
  (socket as EdgeSocket)[REFUSED] = true;
  // Before the TLS handshake nothing readable can be written: close at once.
  if (tls || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rawErrorResponse(pe));
  // A client that keeps its half of the connection open is cut after a second.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * Count connections (the portico_open_connections gauge) and refuse those over the caps with a
 * 503 `too_many_connections`. Per-IP counts use the TCP peer, so they are skipped behind a proxy
 * (`trustProxy`), where every peer is the proxy.
 */
export function guardConnections(
  server: Server,
  limits: ConnectionLimits,
  metrics: EdgeMetrics,
  opts: { tls: boolean; trustProxy: boolean },
): void {
  let open = 0;
  const perIp = new Map<string, number>();
  const capIp = opts.trustProxy ? 0 : limits.maxPerIp;
  server.on('connection', (socket: Socket) => {
    open++;
    metrics.openConnections.inc();
    const ip = socket.remoteAddress ?? '';
    const mine = capIp > 0 ? (perIp.get(ip) ?? 0) + 1 : 0;
    if (capIp > 0) perIp.set(ip, mine);
    socket.once('close', () => {
      open--;
      metrics.openConnections.dec();
      if (capIp > 0) {
        const n = (perIp.get(ip) ?? 1) - 1;
        if (n <= 0) perIp.delete(ip);
        else perIp.set(ip, n);
      }
    });
    if (open > limits.maxConnections) {
      metrics.connectionsRefused.labels('max_connections').inc();
      refuse(
        socket,
        new PorticoError(
          'too_many_connections',
          `This gateway replica already holds its maximum of ${limits.maxConnections} open connections (server.max_connections). Retry shortly or on another replica.`,
          { headers: { 'retry-after': '1' } },
        ),
        opts.tls,
      );
    } else if (capIp > 0 && mine > capIp) {
      metrics.connectionsRefused.labels('max_connections_per_ip').inc();
      refuse(
        socket,
        new PorticoError(
          'too_many_connections',
          `Your address already holds ${capIp} open connections to this gateway (server.max_connections_per_ip). Reuse or close idle connections.`,
          { headers: { 'retry-after': '1' } },
        ),
        opts.tls,
      );
    }
  });
}

/** True when the socket was refused at accept time (its requests must not be processed). */
export function isRefused(socket: Socket): boolean {
  return (socket as EdgeSocket)[REFUSED] === true;
}

/** Remember the socket's current request (its headers are in; a deadline missed now is the body's). */
export function trackRequest(req: IncomingMessage): void {
  (req.socket as EdgeSocket)[CURRENT] = req;
}

interface ClientErrorLike {
  code?: string;
}

/**
 * Fastify's clientErrorHandler: malformed HTTP, oversize headers and missed deadlines get an
 * OpenAI-shaped error and the connection is closed.
 */
export function edgeClientErrorHandler(
  metrics: EdgeMetrics,
  limits: { headersTimeoutMs: number; bodyTimeoutMs: number; tls?: boolean },
): (err: Error, socket: Socket) => void {
  return (err, socket) => {
    const code = (err as ClientErrorLike).code;
    if (code === 'ECONNRESET' || code === 'EPIPE' || socket.destroyed) {
      socket.destroy();
      return;
    }
    let reason: string;
    let catalog: ErrorCode;
    let message: string;
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      catalog = 'request_timeout';
      const current = (socket as EdgeSocket)[CURRENT];
      if (current && !current.complete) {
        reason = 'body_timeout';
        message = `The request body did not arrive within ${limits.bodyTimeoutMs} ms (server.body_timeout_ms); the connection is closed. Send the whole body at once.`;
      } else {
        reason = 'headers_timeout';
        message = `The request line and headers did not arrive within ${limits.headersTimeoutMs} ms (server.headers_timeout_ms); the connection is closed.`;
      }
    } else if (code === 'HPE_HEADER_OVERFLOW') {
      reason = 'headers_too_large';
      catalog = 'headers_too_large';
      message = 'The request headers are too large. Send fewer or shorter headers.';
    } else {
      reason = 'bad_request';
      catalog = 'invalid_request';
      message = `Malformed HTTP request (${code ?? 'parse error'}).`;
    }
    metrics.connectionsRefused.labels(reason).inc();
    if (socket.writable && !(socket as EdgeSocket)[REFUSED])
      socket.write(rawErrorResponse(new PorticoError(catalog, message), limits.tls === true));
    socket.destroy();
  };
}
