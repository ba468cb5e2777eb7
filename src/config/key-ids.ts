/**
 * The id of an API key declared in the config: its `id:` when it has one, else one derived from
 * the key itself — `{tenant}-cfg-` + the first 12 hex characters of the key's sha256 (the digest
 * the gateway authenticates by). Per-key state hangs off this id (rate-limit counters, in-flight
 * slots, quota scopes `key:<id>`, ledger and audit records), so it must not depend on where the
 * key sits in the list: removing or reordering keys leaves every other key's id as it was.
 *
 * 12 hex characters are 48 bits of a sha256: for a high-entropy key (the generated `sk-portico-…`
 * keys carry 256 random bits) they reveal nothing usable about the key. Duplicate keys are a
 * config error, and two different keys sharing 48 bits of digest in one tenant would be reported
 * as duplicate ids by `config check` (give one an `id:`).
 */
import { sha256Hex } from '../lib/hash.js';

/** Hex characters of the key's sha256 in a derived id. */
export const CONFIG_KEY_DIGEST_CHARS = 12;

/** The sha256 hex digest of a config key: its `sha256:` as given, or the hash of its `value:`. */
export function configKeyDigest(k: { value: string } | { sha256: string }): string {
  return 'sha256' in k ? k.sha256 : sha256Hex(k.value);
}

/** A config key's id: the explicit `id:`, else `{tenant}-cfg-{first 12 hex of its sha256}`. */
export function configKeyId(tenantId: string, explicitId: string | undefined, digest: string): string {
  return explicitId ?? `${tenantId}-cfg-${digest.slice(0, CONFIG_KEY_DIGEST_CHARS)}`;
}

/**
 * The id versions before this one gave the key at `index` in a tenant's `api_keys` when it had no
 * `id:`. Only the start-up migration of quota usage uses it (tenancy/config-key-ids.ts).
 */
export function positionalConfigKeyId(tenantId: string, index: number): string {
  return `${tenantId}-cfg-${index}`;
}
