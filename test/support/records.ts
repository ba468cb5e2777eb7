/** A finished request's stored record (request log, audit) for tests; `over` replaces fields. */
import type { StoredRecord } from '../../src/telemetry/request-log.js';

export function storedRecord(over: Partial<StoredRecord> = {}): StoredRecord {
  return {
    request_id: 'req_1',
    correlation_id: 'corr_1',
    at: Date.UTC(2026, 11, 7, 4, 30, 0, 123),
    tenant: 'acme',
    key_id: null,
    model: 'default',
    variant: null,
    backend: 'b1',
    fallback_model: null,
    route: 'chat',
    endpoint: '/v1/chat/completions',
    status: 200,
    stream: false,
    latency_ms: 1.5,
    ttft_ms: null,
    tokens_in: 1,
    tokens_out: 1,
    tokens_estimated: false,
    partial: false,
    cost_usd: 0,
    cache_hit: null,
    error: null,
    ...over,
  };
}
