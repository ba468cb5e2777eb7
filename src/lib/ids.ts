import { randomBytes, randomUUID } from 'node:crypto';

/** Request ids: `req_` + 24 hex chars (random). Cheap: randomBytes is pooled by Node. */
export function newRequestId(): string {
  return 'req_' + randomBytes(12).toString('hex');
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
