/**
 * Redis invalidation bus: a revoke bumps a version counter and publishes on a channel in one
 * script. Replicas drop their key cache on the message, and also poll the version so a message
 * missed during a reconnect is caught within the poll interval. Wrapped by DualInvalidationBus
 * (../dual-bus.ts) with a version in Postgres, for a replica that cannot reach Redis.
 */
import type { Redis } from 'ioredis';
import type { InvalidationBus, InvalidationEvent } from '../ports.js';
import { num, runScript, type RedisContext } from './client.js';
import { INVALIDATE } from './scripts.js';

function parseEvent(msg: string): InvalidationEvent | null {
  try {
    const v: unknown = JSON.parse(msg);
    if (v === null || typeof v !== 'object') return null;
    const o = v as Record<string, unknown>;
    if (
      (o.kind === 'key_revoked' || o.kind === 'key_created' || o.kind === 'tenant_changed') &&
      typeof o.tenant === 'string' &&
      typeof o.id === 'string'
    ) {
      return { kind: o.kind, tenant: o.tenant, id: o.id };
    }
  } catch {
    // not ours
  }
  return null;
}

export class RedisInvalidationBus implements InvalidationBus {
  readonly #ctx: RedisContext;
  readonly #sub: Redis;
  readonly #channel: string;
  readonly #versionKey: string;
  readonly #subs = new Set<(e: InvalidationEvent) => void>();

  /** `sub` must be a dedicated connection (a subscribed connection can run nothing else). */
  constructor(ctx: RedisContext, sub: Redis) {
    this.#ctx = ctx;
    this.#sub = sub;
    this.#channel = `${ctx.prefix}invalidate`;
    this.#versionKey = `${ctx.prefix}invalidate:version`;
    sub.on('message', (channel: string, msg: string) => {
      if (channel !== this.#channel) return;
      const e = parseEvent(msg);
      if (e) for (const fn of this.#subs) fn(e);
    });
    // ioredis re-subscribes on reconnect (autoResubscribe), but only channels it had subscribed;
    // subscribing again on every 'ready' also covers a Redis that was down at startup.
    const subscribe = (): void => {
      sub.subscribe(this.#channel).catch((err: unknown) => {
        ctx.logger?.warn(
          { err, store: 'redis' },
          'redis invalidation subscribe failed; relying on version polling',
        );
      });
    };
    sub.on('ready', subscribe);
    if (sub.status === 'ready') subscribe();
  }

  /**
   * Throws when Redis cannot take it (counted first): the caller (DualInvalidationBus) then relies
   * on the version in Postgres, which it bumps too, and says so.
   */
  async publish(e: InvalidationEvent): Promise<void> {
    try {
      await runScript(this.#ctx.redis, INVALIDATE, [this.#versionKey], [this.#channel, JSON.stringify(e)]);
    } catch (error) {
      this.#ctx.hooks?.onError?.({
        store: 'redis',
        port: 'invalidation',
        op: 'publish',
        mode: this.#ctx.mode,
        error,
      });
      throw error;
    }
  }

  subscribe(fn: (e: InvalidationEvent) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /** Throws when Redis is unreachable: the key cache then stops trusting itself. */
  async version(): Promise<number> {
    const v = await this.#ctx.redis.get(this.#versionKey);
    return v === null ? 0 : num(v);
  }

  async close(): Promise<void> {
    this.#subs.clear();
    this.#sub.disconnect();
  }
}
