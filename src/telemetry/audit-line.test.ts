/** auditLine: the record as one JSON line, `time` and `client_ip` first, `at` left out, nothing else changed. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { auditLine } from './audit.js';
import type { StoredRecord } from './request-log.js';
import { storedRecord } from '../../test/support/records.js';

function record(over: Partial<StoredRecord> = {}): StoredRecord {
  return storedRecord({
    key_id: 'k1',
    model: 'chat',
    backend: 'mock',
    tokens_in: 12,
    tokens_out: 5,
    ...over,
  });
}

/** What the line was before: a copy of the record with `time` and `client_ip` first, `at` dropped. */
function reference(rec: StoredRecord, ip: string): string {
  return JSON.stringify({ time: new Date(rec.at).toISOString(), client_ip: ip, ...rec, at: undefined });
}

describe('auditLine', () => {
  const cases: Array<[string, StoredRecord, string]> = [
    ['a plain record', record(), '127.0.0.1'],
    [
      'ids holding the key text and quotes',
      record({ request_id: ',"at":1,', correlation_id: 'x","at":2' }),
      '::1',
    ],
    [
      'an error and bodies',
      record({
        status: 429,
        error: { code: 'rate_limit_exceeded', message: 'a "quoted" ,"at": 5' },
        request_body: '{"at":1}',
        response_body: 'ok',
      }),
      '10.0.0.1',
    ],
    ['epoch 0 and a unicode IP label', record({ at: 0 }), 'fe80::1%é'],
  ];
  for (const [name, rec, ip] of cases)
    it(`${name}: the same JSON as a copy of the record`, () => {
      const line = auditLine(rec, ip);
      assert.equal(line, reference(rec, ip));
      const parsed = JSON.parse(line) as Record<string, unknown>;
      assert.equal(parsed.at, undefined);
      assert.deepEqual(Object.keys(parsed).slice(0, 3), ['time', 'client_ip', 'request_id']);
    });
});
