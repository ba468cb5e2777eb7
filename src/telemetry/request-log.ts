/**
 * The console's request log: the latest finished requests in a fixed-size ring buffer (O(1) per
 * request, bounded memory). Bodies are kept only when the audit configuration captured them
 * (`ctx.auditBodies`, already redacted) — never otherwise.
 */
import type { RequestContext } from '../pipeline/context.js';
import type { RequestRecord } from '../http/wire.js';

export type { RequestRecord };

export interface RequestFilter {
  tenant?: string;
  model?: string;
  /** An exact status (429), a class (4xx, 5xx) or `error` (>= 400) / `ok` (< 400). */
  status?: string;
  /** Exact id, or a prefix of at least 4 characters. */
  request_id?: string;
  limit?: number;
}

/** What the ring holds: the record with its time as epoch ms (formatted only when read). */
export type StoredRecord = Omit<RequestRecord, 'time'> & { at: number };

const round = (n: number): number => Math.round(n * 10) / 10;

/** The last record built: the finish hooks (console log, audit) ask for it one after the other. */
let last: { ctx: RequestContext; status: number; rec: StoredRecord } | undefined;

/**
 * A finished request's record. Asked twice for the same request and status (the console's log and
 * the audit log, in one finish), it is built once: callers must not change it.
 */
export function recordFromContext(ctx: RequestContext, status: number, nowMs: number): StoredRecord {
  if (last !== undefined && last.ctx === ctx && last.status === status) return last.rec;
  const rec: StoredRecord = {
    request_id: ctx.requestId,
    correlation_id: ctx.correlationId,
    at: nowMs,
    tenant: ctx.tenant?.id ?? null,
    key_id: ctx.keyId ?? null,
    model: ctx.model ?? null,
    variant: ctx.variant ?? null,
    backend: ctx.backend ?? null,
    fallback_model: ctx.fallbackModel ?? null,
    route: ctx.route,
    endpoint: ctx.endpoint,
    status,
    stream: ctx.stream,
    latency_ms: round(performance.now() - ctx.startedAt),
    ttft_ms: ctx.firstTokenAt === undefined ? null : round(ctx.firstTokenAt - ctx.startedAt),
    tokens_in: ctx.accountedTokens?.input ?? 0,
    tokens_out: ctx.accountedTokens?.output ?? 0,
    tokens_estimated: ctx.accountedTokens?.estimated ?? false,
    partial: ctx.partial === true,
    cost_usd: ctx.costUsd ?? 0,
    cache_hit: ctx.cacheHit ?? null,
    error: ctx.error ?? null,
  };
  if (ctx.auditBodies?.request !== undefined) rec.request_body = ctx.auditBodies.request;
  if (ctx.auditBodies?.response !== undefined) rec.response_body = ctx.auditBodies.response;
  last = { ctx, status, rec };
  return rec;
}

function view(r: StoredRecord): RequestRecord {
  const { at, ...rest } = r;
  return { time: new Date(at).toISOString(), ...rest };
}

function statusMatches(status: number, want: string): boolean {
  const w = want.trim().toLowerCase();
  if (w === '' || w === 'all') return true;
  if (w === 'error') return status >= 400;
  if (w === 'ok') return status < 400;
  if (/^[1-5]xx$/.test(w)) return Math.floor(status / 100) === Number(w[0]);
  return String(status) === w;
}

export class RequestLog {
  readonly capacity: number;
  readonly #ring: Array<StoredRecord | undefined>;
  #next = 0;
  #size = 0;

  constructor(capacity = 1000) {
    this.capacity = Math.max(1, Math.floor(capacity));
    this.#ring = new Array<StoredRecord | undefined>(this.capacity);
  }

  get size(): number {
    return this.#size;
  }

  add(rec: StoredRecord): void {
    this.#ring[this.#next] = rec;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
  }

  /** Newest first. */
  query(f: RequestFilter = {}): RequestRecord[] {
    const limit = Math.max(1, Math.min(this.capacity, f.limit ?? 100));
    const id = f.request_id?.trim();
    const out: RequestRecord[] = [];
    for (let k = 1; k <= this.#size && out.length < limit; k++) {
      const r = this.#ring[(this.#next - k + this.capacity) % this.capacity];
      if (!r) continue;
      if (f.tenant && r.tenant !== f.tenant) continue;
      if (f.model && r.model !== f.model) continue;
      if (f.status && !statusMatches(r.status, f.status)) continue;
      if (id && !(r.request_id === id || (id.length >= 4 && r.request_id.startsWith(id)))) continue;
      out.push(view(r));
    }
    return out;
  }

  get(requestId: string): RequestRecord | undefined {
    for (let k = 1; k <= this.#size; k++) {
      const r = this.#ring[(this.#next - k + this.capacity) % this.capacity];
      if (r?.request_id === requestId) return view(r);
    }
    return undefined;
  }
}
