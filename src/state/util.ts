/** Small pure helpers shared by every state implementation. */
import { createHash, randomBytes, randomFillSync, randomUUID } from 'node:crypto';
import type { BucketCheck, JsonObject, QuotaWindow } from './ports.js';

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Base62 of the bytes, fixed length for a given byte count (leading zeros kept). */
export function base62(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  const len = Math.ceil((bytes.length * 8) / Math.log2(62));
  let out = '';
  for (let i = 0; i < len; i++) {
    out = B62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out;
}

export const API_KEY_PREFIX = 'sk-portico-';
/** How many plaintext characters are kept for display. */
const DISPLAY_CHARS = API_KEY_PREFIX.length + 4;

/** A new API key: `sk-portico-` + 32 random bytes in base62 (43 chars). */
export function generateApiKey(): { plaintext: string; hash: string; prefix: string } {
  const plaintext = API_KEY_PREFIX + base62(randomBytes(32));
  return { plaintext, hash: hashApiKey(plaintext), prefix: plaintext.slice(0, DISPLAY_CHARS) };
}

/** The key to store for a NewApiKey: the given secret (imports) or a fresh one. */
export function keyMaterial(plaintext: string | undefined): {
  plaintext: string;
  hash: string;
  prefix: string;
} {
  if (plaintext === undefined) return generateApiKey();
  return {
    plaintext,
    hash: hashApiKey(plaintext),
    prefix: plaintext.slice(0, Math.min(DISPLAY_CHARS, Math.max(4, plaintext.length - 8))),
  };
}

/** Hex SHA-256: keys are 256-bit random, so a fast unsalted hash is the right tool. */
export function hashApiKey(plaintext: string): string {
  return createHash('sha256').update(plaintext, 'utf8').digest('hex');
}

export function newKeyId(): string {
  return 'key_' + base62(randomBytes(9));
}

export function newId(): string {
  return randomUUID();
}

/** Random bytes for newTimeId, drawn 4 KiB at a time (one call into the CSPRNG per ~400 ids). */
const randomPool = Buffer.alloc(4096);
let randomAt = randomPool.length;

/**
 * A time-ordered id (UUID version 7: the first 48 bits are `ms`, the rest random), for records
 * whose creation time a reader needs to bound a search (quota reservations).
 */
export function newTimeId(ms: number): string {
  const t = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0').slice(-12);
  if (randomAt + 10 > randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  const r = randomPool.toString('hex', randomAt, (randomAt += 10));
  const variant = ((parseInt(r.slice(3, 4), 16) & 0x3) | 0x8).toString(16);
  return `${t.slice(0, 8)}-${t.slice(8)}-7${r.slice(0, 3)}-${variant}${r.slice(4, 7)}-${r.slice(7, 19)}`;
}

/** The creation time of an id made by newTimeId, or undefined for any other id. */
export function timeIdMs(id: string): number | undefined {
  if (id.length !== 36 || id[14] !== '7' || id[8] !== '-' || id[13] !== '-') return undefined;
  const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Normalise a caller-given timestamp (ISO or anything Date parses) to ISO-8601 UTC; null stays null. */
export function normalizeTime(v: string | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw new RangeError(`not a valid time: ${v}`);
  return new Date(ms).toISOString();
}

export function isoNow(ms: number): string {
  return new Date(ms).toISOString();
}

/** "2026-11-22" / "2026-11" for the UTC window containing `ms`. */
export function windowId(window: QuotaWindow, ms: number): string {
  // Every request asks for the day and the month of about now: the UTC day they fall in is kept.
  if (!(ms >= dayStart && ms < dayEnd)) {
    const iso = new Date(ms).toISOString();
    dayStart = ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
    dayEnd = dayStart + DAY_MS;
    dayId = iso.slice(0, 10);
    monthId = iso.slice(0, 7);
  }
  return window === 'day' ? dayId : monthId;
}

const DAY_MS = 86_400_000;
let dayStart = NaN;
let dayEnd = NaN;
let dayId = '';
let monthId = '';

/** ms epoch of the next UTC day/month boundary after `ms`. */
export function windowResetAt(window: QuotaWindow, ms: number): number {
  const d = new Date(ms);
  return window === 'day'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export const QUOTA_WINDOWS: readonly QuotaWindow[] = ['day', 'month'];

export const DEFAULT_LEASE_MS = 120_000;
/** A quota reservation's lease unless the request says otherwise (renewed by its owner every third). */
export const DEFAULT_RESERVATION_TTL_MS = 15_000;

/** Day/month group for ledger rows. */
export function ledgerGroupOfTime(groupBy: 'day' | 'month', ms: number): string {
  return windowId(groupBy, ms);
}

export function parseJsonObject(s: string | null): JsonObject | null {
  if (s === null) return null;
  const v: unknown = JSON.parse(s);
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : null;
}

export function parseStringArray(s: string | null): string[] {
  if (s === null) return [];
  const v: unknown = JSON.parse(s);
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * The buckets of one consumeAll call: one tenant's (one Redis Cluster slot), distinct, with
 * positive rates and bursts. Programming errors, so RangeErrors.
 */
export function assertBucketSet(buckets: readonly BucketCheck[]): void {
  const first = buckets[0];
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i] as BucketCheck;
    assertPositive('ratePerSec', b.ratePerSec);
    assertPositive('burst', b.burst);
    if (first && b.key.tenant !== first.key.tenant)
      throw new RangeError(
        `consumeAll takes one tenant's buckets, got ${first.key.tenant} and ${b.key.tenant}`,
      );
    for (let j = 0; j < i; j++)
      if (buckets[j]?.key.name === b.key.name)
        throw new RangeError(`consumeAll takes distinct buckets, got ${b.key.name} twice`);
  }
}

/** Validate a token-bucket / window argument early: NaN or <= 0 limits are programming errors. */
export function assertPositive(name: string, v: number): void {
  if (!Number.isFinite(v) || v <= 0)
    throw new RangeError(`${name} must be a positive finite number, got ${v}`);
}
