/**
 * L2: a Redis tier shared by every gateway replica. Keys are namespaced per tenant
 * (`<prefix><tenant>:<hash>`), values are the JSON entry with a TTL, entries above
 * `max_entry_bytes` are not stored. Redis being slow or down is a miss, never an error: the
 * request goes upstream, the failure is counted and `portico_cache_l2_up` drops to 0.
 */
import { Redis } from 'ioredis';
import { parseEntry, type CachedEntry } from './entry.js';

export interface RedisTierOptions {
  url: string;
  keyPrefix: string;
  ttlMs: number;
  maxEntryBytes: number;
  timeoutMs: number;
}

export interface RedisTierHooks {
  onError(op: 'get' | 'set', err: unknown): void;
  onUp(up: boolean): void;
  onStoreSkipped(): void;
}

class TimeoutError extends Error {}

export class RedisTier {
  readonly #redis: Redis;
  readonly #opts: RedisTierOptions;
  readonly #hooks: RedisTierHooks;
  #up = false;

  constructor(opts: RedisTierOptions, hooks: RedisTierHooks) {
    this.#opts = opts;
    this.#hooks = hooks;
    this.#redis = new Redis(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: Math.max(opts.timeoutMs, 50),
      retryStrategy: (n: number) => Math.min(100 * n, 2000),
    });
    this.#redis.on('ready', () => this.#setUp(true));
    this.#redis.on('close', () => this.#setUp(false));
    this.#redis.on('error', () => this.#setUp(false));
    hooks.onUp(false);
  }

  get up(): boolean {
    return this.#up;
  }

  #setUp(up: boolean): void {
    if (up === this.#up) return;
    this.#up = up;
    this.#hooks.onUp(up);
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
    this.#redis.disconnect();
    await Promise.resolve();
  }
}
