/**
 * Stage: authenticate. The presented key is hashed (sha256) and looked up by its digest — first in
 * the config snapshot (no I/O), then in the key store (API-created keys, cached and invalidated
 * across replicas on revocation). A lookup by digest reveals nothing about the key through its
 * timing (finding a key from its digest is a preimage). Plain keys are never stored or logged; the
 * digest of the last key on a connection is remembered with the connection (ctx.keyMemo), so a
 * keep-alive client's requests after its first skip the hash.
 */
import { PorticoError } from '../errors/portico-error.js';
import { sha256Hex } from '../lib/hash.js';
import type { RequestContext } from './context.js';
import type { KeyEntry, TenantRuntime } from './snapshot.js';

export type KeyLookupResult = { entry: KeyEntry; tenant: TenantRuntime } | { rejected: string } | undefined;
/** A further source of keys (the key store), asked when the snapshot does not know the key. */
export type KeyLookup = (plaintext: string, ctx: RequestContext) => Promise<KeyLookupResult>;

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

export async function authenticate(
  ctx: RequestContext,
  presented: string | undefined,
  lookup?: KeyLookup,
  /** Whether a key's sha256 is the admin token's (to say so instead of "Invalid API key"). */
  isAdminToken?: (sha256: string) => boolean,
): Promise<TenantRuntime> {
  if (presented === undefined) {
    throw new PorticoError(
      'invalid_api_key',
      'Missing API key. Send it as "Authorization: Bearer <your key>".',
    );
  }
  if (presented.length > 512) throw new PorticoError('invalid_api_key', 'Invalid API key.');
  const memo = ctx.keyMemo;
  let hash: string;
  if (memo !== undefined && memo.key === presented) hash = memo.hash;
  else {
    hash = sha256Hex(presented);
    if (memo !== undefined) {
      memo.key = presented;
      memo.hash = hash;
    }
  }
  const entry = ctx.snapshot.keys.get(hash);
  if (entry) {
    const tenant = ctx.snapshot.tenants.get(entry.tenantId);
    if (!tenant)
      throw new PorticoError('invalid_api_key', 'This API key belongs to a tenant that no longer exists.');
    ctx.tenant = tenant;
    ctx.keyId = entry.keyId;
    ctx.key = entry;
    return tenant;
  }
  const found = lookup ? await lookup(presented, ctx) : undefined;
  if (found && 'rejected' in found) throw new PorticoError('invalid_api_key', found.rejected);
  if (!found) {
    if (isAdminToken?.(hash))
      throw new PorticoError(
        'invalid_api_key',
        "This is the admin token: it opens the admin API (/admin/*) and the console, not the tenant endpoints. Send a tenant API key here (a key from the config's tenants[].api_keys, or one made with: portico keys create --tenant ID).",
      );
    throw new PorticoError(
      'invalid_api_key',
      `Invalid API key (${redactKey(presented)}). Check the key, or ask your Portico operator for a new one.`,
    );
  }
  ctx.tenant = found.tenant;
  ctx.keyId = found.entry.keyId;
  ctx.key = found.entry;
  return found.tenant;
}

/** Show enough of a key to recognise it, never enough to use it. */
export function redactKey(key: string): string {
  if (key.length <= 8) return '***';
  return `${key.slice(0, 6)}...${key.slice(-2)}`;
}
