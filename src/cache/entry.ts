/** What the cache stores: a unary response body, or every chunk of a stream (usage included). */
export type CachedEntry =
  { kind: 'json'; body: unknown; storedAt: number } | { kind: 'stream'; chunks: unknown[]; storedAt: number };

export type CacheTier = 'l1' | 'l2';

/** Approximate size in bytes (the JSON text length), for the L1 memory bound and the L2 entry cap. */
export function entryBytes(serialized: string): number {
  return Buffer.byteLength(serialized);
}

export function parseEntry(text: string): CachedEntry | undefined {
  try {
    const v = JSON.parse(text) as Partial<CachedEntry> | null;
    if (!v || typeof v !== 'object' || typeof v.storedAt !== 'number') return undefined;
    if (v.kind === 'json' && 'body' in v) return v as CachedEntry;
    if (v.kind === 'stream' && Array.isArray((v as { chunks?: unknown }).chunks)) return v as CachedEntry;
    return undefined;
  } catch {
    return undefined;
  }
}
