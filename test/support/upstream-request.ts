/** Requests for the upstream handlers' unit tests (src/providers/upstream-bytes.ts, upstream-stream.ts). */
import type { BytesRequest, TransportPhase } from '../../src/providers/upstream-bytes.js';
import { Cancel } from '../../src/lib/abort.js';

/** What `mapError` turns a transport error into: the phase and the original error, for assertions. */
export class Mapped extends Error {
  constructor(
    readonly phase: TransportPhase,
    readonly original: unknown,
  ) {
    super(`mapped ${phase}`);
  }
}

/** A POST to `path` with a fresh Cancel, 5 s timeouts and a 1 KB error body cap, unless overridden. */
export function upstreamRequest(path: string, body: string, over: Partial<BytesRequest> = {}): BytesRequest {
  return {
    path,
    headers: { 'content-type': 'application/json', 'x-test': 'yes' },
    body,
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
    cancel: new Cancel(),
    maxErrorBody: 1024,
    mapError: (err, phase) => new Mapped(phase, err),
    ...over,
  };
}
