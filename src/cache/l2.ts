/**
 * L2: a Redis tier shared by every gateway replica. Keys are namespaced per tenant
 * (`<prefix><tenant>:<hash>`), values are the JSON entry with a TTL, entries above
 * `max_entry_bytes` are not stored. Redis being slow or down is a miss, never an error: the
 * request goes upstream, the failure is counted and `portico_cache_l2_up` drops to 0.
 *
 * ioredis (~20 MB of RSS) is required when an L2 tier is constructed, i.e. only when cache.l2 is
 * enabled: a gateway without one never loads it.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { parseEntry, type CachedEntry } from './entry.js';

export interface RedisTierOptions {
  url: string;
  keyPrefix: string;
  ttlMs: number;
  maxEntryBytes: number;
  timeoutMs: number;
}

export type L2Reachability =
  { up: true; recovered: boolean; downForMs: number } | { up: false; firstAttempt: boolean; reason: string };

export interface RedisTierHooks {
  onError(op: 'get' | 'set', err: unknown): void;
  /**
   * Reachability changed — called on real transitions only: connected (the first time, or again
   * after an outage: `downForMs` says how long it was out), or unreachable (the first connection
   * attempt failed, or an established connection was lost: `reason` says why). Nothing is reported
   * while the first attempt is still under way, so a start-up that connects says only "connected".
   */
  onReachability(change: L2Reachability): void;
  onStoreSkipped(): void;
}

class TimeoutError extends Error {}

export class RedisTier {
  readonly #redis: Redis;
  readonly #opts: RedisTierOptions;
  readonly #hooks: RedisTierHooks;
  #up = false;
  /** Reported unreachable and not reachable since (epoch ms), or undefined. */
  #downSince: number | undefined;
  #everConnected = false;
  #lastError: string | undefined;
  #closed = false;

  constructor(opts: RedisTierOptions, hooks: RedisTierHooks) {
    this.#opts = opts;
    this.#hooks = hooks;
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    this.#redis = new RedisClient(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: Math.max(opts.timeoutMs, 50),
      retryStrategy: (n: number) => Math.min(100 * n, 2000),
    });
    // ioredis emits `error` then `close` for every failed attempt while it retries: only the
    // first failure of an outage is reported, with the error that caused it.
    this.#redis.on('ready', () => this.#connected());
    this.#redis.on('error', (err: Error) => {
      this.#lastError = err.message;
      this.#lost();
    });
    this.#redis.on('close', () => this.#lost());
  }

  get up(): boolean {
    return this.#up;
  }

  #connected(): void {
    if (this.#up || this.#closed) return;
    this.#up = true;
    const recovered = this.#downSince !== undefined;
    const downForMs = recovered ? Date.now() - (this.#downSince ?? 0) : 0;
    this.#downSince = undefined;
    this.#everConnected = true;
    this.#lastError = undefined;
    this.#hooks.onReachability({ up: true, recovered, downForMs });
  }

  #lost(): void {
    this.#up = false;
    if (this.#closed || this.#downSince !== undefined) return;
    this.#downSince = Date.now();
    this.#hooks.onReachability({
      up: false,
      firstAttempt: !this.#everConnected,
      reason: this.#lastError ?? 'connection closed',
    });
  }

  #key(tenant: string, hash: string): string {
    return `${this.#opts.keyPrefix}${tenant}:${hash}`;
  }

  async get(tenant: string, hash: string): Promise<CachedEntry | undefined> {
    if (!this.#up) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const text = await Promise.race([
        this.#redis.get(this.#key(tenant, hash)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TimeoutError('L2 lookup timed out')), this.#opts.timeoutMs);
        }),
      ]);
      return text === null ? undefined : parseEntry(text);
    } catch (err) {
      this.#hooks.onError('get', err);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Store in the background; the caller never waits for Redis. */
  set(tenant: string, hash: string, serialized: string): void {
    if (!this.#up) return;
    if (Buffer.byteLength(serialized) > this.#opts.maxEntryBytes) {
      this.#hooks.onStoreSkipped();
      return;
    }
    this.#redis
      .set(this.#key(tenant, hash), serialized, 'PX', Math.max(1, Math.round(this.#opts.ttlMs)))
      .catch((err: unknown) => this.#hooks.onError('set', err));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
    this.#redis.disconnect();
    await Promise.resolve();
  }
}
