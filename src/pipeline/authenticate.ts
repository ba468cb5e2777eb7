/**
 * Stage: authenticate. The presented key is hashed (sha256) and looked up; the stored digest is
 * compared in constant time. Plain keys are never stored or logged.
 */
import { PorticoError } from '../errors/portico-error.js';
import { digestsEqual, sha256Hex } from '../lib/hash.js';
import type { RequestContext } from './context.js';
import type { KeyEntry, TenantRuntime } from './snapshot.js';

/** Resolves a key hash to its entry; the default looks in the config snapshot. Later sources (a key store) chain here. */
export type KeyLookup = (
  hash: string,
  ctx: RequestContext,
) => KeyEntry | undefined | Promise<KeyEntry | undefined>;
export type TenantLookup = (
  id: string,
  ctx: RequestContext,
) => TenantRuntime | undefined | Promise<TenantRuntime | undefined>;

export function extractKey(
  authorization: string | undefined,
  xApiKey?: string | string[],
): string | undefined {
  if (authorization !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m) return m[1];
    return undefined;
  }
  if (typeof xApiKey === 'string' && xApiKey.length > 0) return xApiKey;
  return undefined;
}

export const snapshotKeyLookup: KeyLookup = (hash, ctx) => ctx.snapshot.keys.get(hash);
export const snapshotTenantLookup: TenantLookup = (id, ctx) => ctx.snapshot.tenants.get(id);

export async function authenticate(
  ctx: RequestContext,
  presented: string | undefined,
  lookupKey: KeyLookup = snapshotKeyLookup,
  lookupTenant: TenantLookup = snapshotTenantLookup,
): Promise<TenantRuntime> {
  if (presented === undefined) {
    throw new PorticoError(
      'invalid_api_key',
      'Missing API key. Send it as "Authorization: Bearer <your key>".',
    );
  }
  if (presented.length > 512) throw new PorticoError('invalid_api_key', 'Invalid API key.');
  const hash = sha256Hex(presented);
  const entry = await lookupKey(hash, ctx);
  if (!entry || !digestsEqual(entry.hash, hash)) {
    throw new PorticoError(
      'invalid_api_key',
      `Invalid API key (${redactKey(presented)}). Check the key, or ask your Portico operator for a new one.`,
    );
  }
  const tenant = await lookupTenant(entry.tenantId, ctx);
  if (!tenant)
    throw new PorticoError('invalid_api_key', 'This API key belongs to a tenant that no longer exists.');
  ctx.tenant = tenant;
  ctx.keyId = entry.keyId;
  return tenant;
}

/** Show enough of a key to recognise it, never enough to use it. */
export function redactKey(key: string): string {
  if (key.length <= 8) return '***';
  return `${key.slice(0, 6)}...${key.slice(-2)}`;
}
