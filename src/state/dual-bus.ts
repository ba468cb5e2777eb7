/**
 * The distributed family's invalidation bus: Redis (pub/sub and a version counter,
 * redis/invalidation.ts) and a version row in Postgres (postgres/invalidation.ts) that every
 * replica polls. A change (key revoked or created, tenant edited or deleted) is published on both,
 * after it is committed; either one reaches every replica.
 *
 * Why two: a replica that cannot reach Redis still saves a revocation in Postgres, but its Redis
 * publish fails, and the other replicas — which reach Redis and so trust their caches — kept
 * serving the revoked key for the positive-cache lifetime (30 s; review, 2026-12). The Postgres row
 * is bumped by the same replica that just committed the change there, so it is written whenever
 * the change was; the others read it every `pollMs` (500 ms) and clear their caches when it moves.
 * A publish that neither channel took (Postgres failing right after the commit, and Redis) is
 * retried every `retryMs` until one does, logged, and reported by `undelivered()`.
 */
import type { BackendName, InvalidationBus, InvalidationEvent, StateHooks, StateLogger } from './ports.js';

/** A version other replicas poll: bumped on every publish. */
export interface VersionChannel {
  readonly store: BackendName;
  bump(): Promise<void>;
  read(): Promise<number>;
}

export interface DualBusOptions {
  /** How often the polled version is read. Default 500 ms. */
  pollMs?: number;
  /** How often a publish neither channel took is retried. Default 1000 ms. */
  retryMs?: number;
  logger?: StateLogger | undefined;
  hooks?: StateHooks | undefined;
}

/** What subscribers hear when the polled version moved (which change it was is not known). */
const ANY_CHANGE: InvalidationEvent = { kind: 'tenant_changed', tenant: '*', id: '*' };

export class DualInvalidationBus implements InvalidationBus {
  readonly #primary: InvalidationBus;
  readonly #polled: VersionChannel;
  readonly #opts: DualBusOptions;
  readonly #subs = new Set<(e: InvalidationEvent) => void>();
  readonly #unsubPrimary: () => void;
  readonly #timer: NodeJS.Timeout;
  #retry: NodeJS.Timeout | undefined;
  /** The polled version last read; undefined before the first read. */
  #seen: number | undefined;
  #reading: Promise<void> | undefined;
  #readFailing = false;
  /** The latest publish neither channel took, retried until one does. */
  #owed: InvalidationEvent | undefined;
  #redelivering = false;
  #closed = false;

  constructor(primary: InvalidationBus, polled: VersionChannel, opts: DualBusOptions = {}) {
    this.#primary = primary;
    this.#polled = polled;
    this.#opts = opts;
    this.#unsubPrimary = primary.subscribe((e) => this.#notify(e));
    this.#timer = setInterval(() => void this.check(), opts.pollMs ?? 500);
    this.#timer.unref();
    void this.check();
  }

  #notify(e: InvalidationEvent): void {
    for (const fn of this.#subs) fn(e);
  }

  /**
   * Read the polled version; a change since the last read clears every subscriber's cache. Never
   * throws: while the version cannot be read (Postgres down) the caches go on trusting the primary
   * bus, which they poll themselves (version()).
   */
  check(): Promise<void> {
    if (this.#reading) return this.#reading;
    this.#reading = (async () => {
      try {
        const v = await this.#polled.read();
        if (this.#readFailing)
          this.#opts.logger?.warn(
            { store: this.#polled.store },
            `invalidation version readable in ${this.#polled.store} again`,
          );
        this.#readFailing = false;
        if (this.#seen !== undefined && v !== this.#seen) this.#notify(ANY_CHANGE);
        this.#seen = v;
      } catch (error) {
        if (this.#closed) return;
        if (!this.#readFailing) {
          this.#opts.hooks?.onError?.({
            store: this.#polled.store,
            port: 'invalidation',
            op: 'version',
            mode: 'fail_open',
            error,
          });
          this.#opts.logger?.warn(
            { err: error, store: this.#polled.store },
            `invalidation version in ${this.#polled.store} unreadable; changes reach this replica over redis only until it is back`,
          );
        }
        this.#readFailing = true;
      } finally {
        this.#reading = undefined;
      }
    })();
    return this.#reading;
  }

  async publish(e: InvalidationEvent): Promise<void> {
    const [primary, polled] = await Promise.allSettled([this.#primary.publish(e), this.#polled.bump()]);
    // This replica at once, whatever the channels did.
    this.#notify(e);
    if (polled.status === 'rejected') {
      this.#opts.hooks?.onError?.({
        store: this.#polled.store,
        port: 'invalidation',
        op: 'publish',
        mode: primary.status === 'rejected' ? 'retry' : 'fail_open',
        error: polled.reason,
      });
    }
    if (primary.status === 'fulfilled') {
      if (polled.status === 'rejected')
        this.#opts.logger?.warn(
          { err: polled.reason, store: this.#polled.store, event: e },
          `invalidation version bump in ${this.#polled.store} failed; the change went over redis`,
        );
      return;
    }
    if (polled.status === 'fulfilled') {
      this.#opts.logger?.warn(
        { err: primary.reason, event: e },
        `redis could not carry an invalidation; the other replicas see it through the version in ${this.#polled.store} (polled every ${this.#opts.pollMs ?? 500} ms)`,
      );
      return;
    }
    this.#owe(e, primary.reason, polled.reason);
  }

  #owe(e: InvalidationEvent, primaryErr: unknown, polledErr: unknown): void {
    this.#owed = e;
    this.#opts.logger?.error(
      { err: polledErr, redisErr: primaryErr, event: e },
      `an invalidation reached neither redis nor ${this.#polled.store}: other replicas keep cached answers (up to the 30 s cache lifetime) until it is delivered; retrying every ${this.#opts.retryMs ?? 1000} ms`,
    );
    if (this.#retry) return;
    this.#retry = setInterval(() => void this.#redeliver(), this.#opts.retryMs ?? 1000);
    this.#retry.unref();
  }

  async #redeliver(): Promise<void> {
    const e = this.#owed;
    if (!e || this.#redelivering) return;
    this.#redelivering = true;
    try {
      const [primary, polled] = await Promise.allSettled([this.#primary.publish(e), this.#polled.bump()]);
      if (primary.status === 'rejected' && polled.status === 'rejected') return;
      // A later publish may have been owed meanwhile: this one carried it too (any change clears all).
      this.#owed = undefined;
      clearInterval(this.#retry);
      this.#retry = undefined;
      this.#opts.logger?.warn({ event: e }, 'an owed invalidation was delivered');
    } finally {
      this.#redelivering = false;
    }
  }

  /** True while a published change has reached no channel the other replicas read (retried). */
  undelivered(): boolean {
    return this.#owed !== undefined;
  }

  subscribe(fn: (e: InvalidationEvent) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /** The primary's version: the key caches poll it, and bypass themselves when it fails. */
  version(): Promise<number> {
    return this.#primary.version();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#retry) clearInterval(this.#retry);
    this.#retry = undefined;
    if (this.#owed)
      this.#opts.logger?.error(
        { event: this.#owed },
        'closing with an invalidation never delivered: other replicas drop their cached answers within the 30 s cache lifetime',
      );
    this.#unsubPrimary();
    this.#subs.clear();
    // A read in flight is not waited for (a hung Postgres must not hold the shutdown); its end,
    // an error once the pool is closed, is ignored.
    await this.#primary.close();
  }
}
