/**
 * The response cache: an in-process LRU (L1, bounded in entries and bytes, with a TTL) in front of
 * an optional shared Redis tier (L2), plus the single-flight table. Lookups go L1 then L2 (an L2
 * hit is copied into L1 for at most what it has left in L2); stores go to both. Everything is keyed by tenant first, so one tenant
 * can never be served another tenant's entry.
 */
import { LRUCache } from 'lru-cache';
import type { CacheConfig } from '../config/schema.js';
import type { Logger } from '../telemetry/logger.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { entryBytes, type CachedEntry, type CacheTier } from './entry.js';
import { FlightTable } from './flight.js';
import { RedisTier } from './l2.js';

export interface CacheHit {
  entry: CachedEntry;
  tier: CacheTier;
}

interface L1Value {
  entry: CachedEntry;
  bytes: number;
}

export class ResponseCache {
  readonly flights = new FlightTable();
  readonly #l1: LRUCache<string, L1Value>;
  readonly #l2: RedisTier | undefined;
  readonly #metrics: GatewayMetrics;
  readonly #ttlMs: number;
  readonly #l2Ttl: number;

  constructor(
    cfg: CacheConfig,
    deps: { metrics: GatewayMetrics; logger: Logger; redisUrl?: string | undefined },
  ) {
    this.#metrics = deps.metrics;
    this.#ttlMs = cfg.l1.ttl_seconds * 1000;
    this.#l2Ttl = cfg.l2.ttl_seconds * 1000;
    const m = deps.metrics;
    this.#l1 = new LRUCache<string, L1Value>({
      max: cfg.l1.max_entries,
      maxSize: cfg.l1.max_bytes,
      sizeCalculation: (v) => Math.max(1, v.bytes),
      ttl: this.#ttlMs,
      ttlAutopurge: false,
      updateAgeOnGet: false,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') m.cacheEvictions.labels('l1').inc();
      },
    });
    const url = cfg.l2.enabled ? (cfg.l2.url ?? deps.redisUrl) : undefined;
    if (cfg.l2.enabled && !url) {
      deps.logger.warn('cache.l2 is enabled but no Redis URL is known (set cache.l2.url); using L1 only');
    }
    if (url) {
      let warned = false;
      // Down until the first connection succeeds (logged only if that attempt fails).
      m.cacheL2Up.set(0);
      this.#l2 = new RedisTier(
        {
          url,
          keyPrefix: cfg.l2.key_prefix,
          ttlMs: cfg.l2.ttl_seconds * 1000,
          maxEntryBytes: cfg.l2.max_entry_bytes,
          timeoutMs: cfg.l2.timeout_ms,
        },
        {
          onError: (op, err) => {
            m.cacheL2Errors.labels(op).inc();
            if (!warned) {
              warned = true;
              deps.logger.warn({ err, op }, 'cache L2 (Redis) failed; serving from L1 and upstream');
            }
          },
          onReachability: (change) => {
            m.cacheL2Up.set(change.up ? 1 : 0);
            if (change.up) {
              warned = false;
              if (change.recovered)
                deps.logger.info(
                  { downForS: Math.round(change.downForMs / 100) / 10 },
                  'cache L2 (Redis) reachable again; shared caching resumed',
                );
              else deps.logger.info('cache L2 (Redis) connected');
            } else if (change.firstAttempt) {
              deps.logger.warn(
                { reason: change.reason },
                'cache L2 (Redis) unavailable: could not connect; serving from L1 and upstream, retrying',
              );
            } else {
              deps.logger.warn(
                { reason: change.reason },
                'cache L2 (Redis) connection lost; serving from L1 and upstream, retrying',
              );
            }
          },
          onStoreSkipped: () => m.cacheStoreSkipped.labels('l2').inc(),
        },
      );
    }
  }

  get l2Enabled(): boolean {
    return this.#l2 !== undefined;
  }

  async lookup(tenant: string, hash: string): Promise<CacheHit | undefined> {
    const k = `${tenant}:${hash}`;
    const v = this.#l1.get(k);
    const lookups = this.#metrics.cacheLookups;
    if (v) {
      lookups.labels(tenant, 'l1', 'hit').inc();
      return { entry: v.entry, tier: 'l1' };
    }
    lookups.labels(tenant, 'l1', 'miss').inc();
    if (!this.#l2) return undefined;
    const entry = await this.#l2.get(tenant, hash);
    lookups.labels(tenant, 'l2', entry ? 'hit' : 'miss').inc();
    if (!entry) return undefined;
    // In L1 no longer than it has left in L2: an entry another replica stored near the end of its
    // L2 life must not get a fresh L1 TTL (it would be served for up to l1.ttl past its expiry).
    const left = this.#l2Ttl - (Date.now() - entry.storedAt);
    if (left >= 1) this.#setL1(k, entry, JSON.stringify(entry), Math.min(this.#ttlMs, left));
    return { entry, tier: 'l2' };
  }

  store(tenant: string, hash: string, entry: CachedEntry): void {
    const serialized = JSON.stringify(entry);
    this.#setL1(`${tenant}:${hash}`, entry, serialized);
    this.#l2?.set(tenant, hash, serialized);
  }

  #setL1(k: string, entry: CachedEntry, serialized: string, ttl?: number): void {
    const bytes = entryBytes(serialized);
    this.#l1.set(k, { entry, bytes }, ttl === undefined ? undefined : { ttl: Math.floor(ttl) });
    this.#metrics.cacheEntries.labels('l1').set(this.#l1.size);
    this.#metrics.cacheBytes.labels('l1').set(this.#l1.calculatedSize);
  }

  /** Count a request answered by joining one in flight. */
  countCoalesced(tenant: string): void {
    this.#metrics.cacheCoalesced.labels(tenant).inc();
  }

  /** Entries currently held by L1 (expired ones included until touched). */
  get l1Size(): number {
    return this.#l1.size;
  }

  clear(): void {
    this.#l1.clear();
  }

  async close(): Promise<void> {
    await this.#l2?.close();
  }
}
