/** Redis connection, Lua script runner, key naming and the failure-mode guard. */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { StateUnavailableError } from '../errors.js';
import type { FailureMode, PortName, ScopeKey, StateHooks, StateLogger } from '../ports.js';

export interface RedisContext {
  redis: Redis;
  /** Key prefix for every key this process writes ("portico:" by default). */
  prefix: string;
  mode: FailureMode;
  logger?: StateLogger | undefined;
  hooks?: StateHooks | undefined;
}

/**
 * Commands fail fast while disconnected (no offline queue, one retry) so a Redis outage turns
 * into the configured fail-open/closed answer within ~commandTimeout instead of a hung request.
 */
export function connectRedis(
  url: string,
  opts: {
    logger?: StateLogger | undefined;
    hooks?: StateHooks | undefined;
    commandTimeoutMs?: number;
    /**
     * Where this connection's up/down goes. Default: hooks.onBackendUp('redis', …) — right for a
     * lone connection; a store made of several (commands + pub/sub) combines them instead
     * (distributed.ts), or whichever connection reported last would decide the gauge.
     */
    onUp?: (up: boolean) => void;
  } = {},
): Redis {
  const r = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: opts.commandTimeoutMs ?? 1000,
    retryStrategy: (n: number) => Math.min(100 * n, 2000),
  });
  let up: boolean | undefined;
  const set = (v: boolean): void => {
    if (up === v) return;
    up = v;
    if (opts.onUp) opts.onUp(v);
    else opts.hooks?.onBackendUp?.('redis', v);
  };
  r.on('ready', () => set(true));
  r.on('close', () => set(false));
  r.on('error', (err: unknown) => {
    // ioredis emits an error per failed reconnect; log only on the up -> down transition.
    if (up !== false) opts.logger?.warn({ err, store: 'redis' }, 'redis connection error');
    set(false);
  });
  return r;
}

/** Connect, waiting at most `ms`; a failure leaves the client reconnecting in the background. */
export async function waitReady(r: Redis, ms = 2000): Promise<boolean> {
  if (r.status === 'ready') return true;
  if (r.status === 'wait') r.connect().catch(() => undefined);
  return new Promise<boolean>((resolve) => {
    const done = (v: boolean): void => {
      clearTimeout(t);
      r.off('ready', onReady);
      resolve(v);
    };
    const onReady = (): void => done(true);
    const t = setTimeout(() => done(false), ms);
    r.once('ready', onReady);
  });
}

export interface LuaScript {
  src: string;
  sha: string;
}

export function lua(src: string): LuaScript {
  return { src, sha: createHash('sha1').update(src).digest('hex') };
}

/** EVALSHA, falling back to EVAL once when the server has not cached the script. */
export async function runScript(
  r: Redis,
  s: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  try {
    return await r.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('NOSCRIPT'))
      return r.eval(s.src, keys.length, ...keys, ...args);
    throw e;
  }
}

/** Tenant ids become a hash tag so all of one tenant's keys share a cluster slot (multi-key scripts). */
export function tenantTag(prefix: string, tenant: string): string {
  return `${prefix}{${encodeURIComponent(tenant)}}`;
}

export function scopedKey(prefix: string, kind: string, k: ScopeKey): string {
  return `${tenantTag(prefix, k.tenant)}:${kind}:${encodeURIComponent(k.name)}`;
}

/**
 * Run a Redis operation under the failure mode. fail_open returns `open()` (a permissive answer
 * marked degraded); fail_closed throws StateUnavailableError. Either way: logged and counted.
 */
export async function guarded<T>(
  ctx: RedisContext,
  port: PortName,
  op: string,
  fn: () => Promise<T>,
  open: () => T,
): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    ctx.hooks?.onError?.({ store: 'redis', port, op, mode: ctx.mode, error });
    ctx.logger?.error(
      { err: error, store: 'redis', port, op, mode: ctx.mode },
      `redis ${port}.${op} failed (${ctx.mode})`,
    );
    if (ctx.mode === 'fail_open') return open();
    throw new StateUnavailableError('redis', `redis unavailable for ${port}.${op}`, error);
  }
}

/** Lua replies arrive as unknown; these narrow them. */
export function asArray(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Error(`unexpected redis reply: ${String(v)}`);
  return v as unknown[];
}

export function num(v: unknown): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw new Error(`unexpected redis number: ${String(v)}`);
  return n;
}
