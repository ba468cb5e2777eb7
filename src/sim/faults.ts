/**
 * Simulator fault modes for drills: per request, decide whether to fail with a status, hang, add
 * a latency spike, delay the headers, cut a stream mid-way or send malformed JSON/SSE. Errors
 * thrown here look exactly like the ones the OpenAI-compatible adapter produces for a real
 * upstream (so in-process `sim` backends exercise the same retry and circuit logic), and the HTTP
 * simulator turns them into real bytes on the wire (status codes, cut sockets, broken bodies).
 */
import { PorticoError } from '../errors/portico-error.js';
import { mapUpstreamStatus } from '../providers/openai-compatible/map-error.js';
import type { SimFaults } from '../config/schema.js';

export interface FaultPlan {
  status?: number;
  hang: boolean;
  extraDelayMs: number;
  /** Streams: cut the connection after this many chunks. */
  disconnectAfter?: number;
  malformed: boolean;
}

const NONE: FaultPlan = { hang: false, extraDelayMs: 0, malformed: false };

export function planFaults(f: SimFaults | undefined, rnd: () => number): FaultPlan {
  if (!f) return NONE;
  const plan: FaultPlan = { hang: false, extraDelayMs: f.slow_headers_ms, malformed: false };
  if (f.error_rate > 0 && rnd() < f.error_rate) plan.status = f.error_status;
  if (f.hang_rate > 0 && rnd() < f.hang_rate) plan.hang = true;
  if (f.spike_rate > 0 && rnd() < f.spike_rate) plan.extraDelayMs += f.spike_ms;
  if (f.disconnect_rate > 0 && rnd() < f.disconnect_rate) plan.disconnectAfter = f.disconnect_after_chunks;
  if (f.malformed_rate > 0 && rnd() < f.malformed_rate) plan.malformed = true;
  return plan;
}

/** The simulator's upstream-style error for an injected status. */
export function injectedStatusError(backend: string, status: number, retryAfterS?: number): PorticoError {
  const body = JSON.stringify({
    error: { message: `simulated ${status}`, type: 'server_error', code: null, param: null },
  });
  return mapUpstreamStatus(
    backend,
    status,
    body,
    retryAfterS !== undefined ? { 'retry-after': String(retryAfterS) } : {},
  );
}

/** Thrown inside a stream to cut it (HTTP: the socket is destroyed). */
export class SimDisconnect extends PorticoError {
  constructor(backend: string) {
    super('upstream_error', `backend ${backend} closed the stream mid-way`, {
      upstream: { backend, class: 'stream_cut' },
    });
  }
}

/** Thrown to send broken JSON (HTTP: raw invalid bytes with status 200). */
export class SimMalformed extends PorticoError {
  constructor(backend: string) {
    super('upstream_error', `backend ${backend} returned malformed JSON`, {
      upstream: { backend, class: 'protocol' },
    });
  }
}
