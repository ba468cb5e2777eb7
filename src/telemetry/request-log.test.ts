import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RequestLog, recordFromContext, type StoredRecord } from './request-log.js';
import { createContext } from '../pipeline/context.js';
import type { Snapshot } from '../pipeline/snapshot.js';
import { storedRecord } from '../../test/support/records.js';

const rec = (i: number, over: Partial<StoredRecord> = {}): StoredRecord =>
  storedRecord({
    request_id: `req_${String(i).padStart(6, '0')}`,
    correlation_id: `c${i}`,
    at: i * 1000,
    tenant: i % 2 === 0 ? 'acme' : 'globex',
    model: i % 3 === 0 ? 'big' : 'default',
    status: i % 5 === 0 ? 429 : i % 7 === 0 ? 502 : 200,
    latency_ms: i,
    ...over,
  });

describe('RequestLog', () => {
  it('keeps the latest `capacity` records, newest first', () => {
    const log = new RequestLog(10);
    for (let i = 1; i <= 25; i++) log.add(rec(i));
    assert.equal(log.size, 10);
    const all = log.query({ limit: 100 });
    assert.deepEqual(
      all.map((r) => r.latency_ms),
      [25, 24, 23, 22, 21, 20, 19, 18, 17, 16],
    );
    assert.equal(log.get('req_000015'), undefined);
    assert.equal(log.get('req_000016')?.latency_ms, 16);
    assert.equal(log.get('req_000016')?.time, '1970-01-01T00:00:16.000Z');
  });

  it('filters by tenant, model, status (exact, class, ok/error) and request id', () => {
    const log = new RequestLog(100);
    for (let i = 1; i <= 30; i++) log.add(rec(i));
    assert.ok(log.query({ tenant: 'acme' }).every((r) => r.tenant === 'acme'));
    assert.equal(log.query({ tenant: 'acme' }).length, 15);
    assert.equal(log.query({ model: 'big' }).length, 10);
    assert.deepEqual(
      log.query({ status: '429' }).map((r) => r.latency_ms),
      [30, 25, 20, 15, 10, 5],
    );
    assert.deepEqual(
      log.query({ status: '5xx' }).map((r) => r.latency_ms),
      [28, 21, 14, 7],
    );
    assert.equal(log.query({ status: 'error' }).length, 10);
    assert.equal(log.query({ status: 'ok' }).length, 20);
    assert.equal(log.query({ tenant: 'acme', status: '4xx' }).length, 3);
    assert.deepEqual(
      log.query({ request_id: 'req_000012' }).map((r) => r.latency_ms),
      [12],
    );
    assert.equal(log.query({ request_id: 'req_00001' }).length, 10, 'prefix match');
    assert.equal(
      log.query({ request_id: 'req' }).length,
      0,
      'prefixes shorter than 4 characters do not match',
    );
    assert.equal(log.query({ limit: 3 }).length, 3);
  });
});

describe('recordFromContext', () => {
  const ctxOf = (id: string) =>
    createContext({
      requestId: id,
      correlationId: id,
      route: 'chat',
      method: 'POST',
      endpoint: '/v1/chat/completions',
      clientIp: '127.0.0.1',
      snapshot: {} as Snapshot,
    });
  it('builds one record per finish: the same request and status asked again get the same record', () => {
    const a = ctxOf('req_a');
    const first = recordFromContext(a, 200, 1000);
    assert.equal(recordFromContext(a, 200, 2000), first, 'the console log and the audit share it');
    assert.equal(first.at, 1000);
    const b = ctxOf('req_b');
    const other = recordFromContext(b, 200, 3000);
    assert.notEqual(other, first);
    assert.equal(other.request_id, 'req_b');
    const again = recordFromContext(b, 502, 4000);
    assert.equal(again.status, 502, 'another status is another record');
    assert.equal(recordFromContext(a, 200, 5000).request_id, 'req_a');
  });
});
