/**
 * The distributed family: Redis (counters, in-flight, quotas, invalidation) + Postgres (tenants,
 * keys, ledger). Imported dynamically by createStateBackends() in distributed mode only, so an
 * embedded gateway never loads ioredis or pg.
 */
import type { Redis } from 'ioredis';
import type { StateConfig, StateOptions, StoreParts } from './factory.js';
import { openPostgres } from './postgres/db.js';
import { PgKeyStore, PgLedgerStore, PgTenantStore } from './postgres/catalog.js';
import { PgResponseStore } from './postgres/responses.js';
import { connectRedis, waitReady, type RedisContext } from './redis/client.js';
import { RedisCounterStore } from './redis/counters.js';
import { RedisInvalidationBus } from './redis/invalidation.js';
import { RedisQuotaStore } from './redis/quotas.js';

export async function openDistributedParts(
  cfg: Extract<StateConfig, { kind: 'distributed' }>,
  opts: StateOptions,
): Promise<StoreParts> {
  const c = opts.clock ? { clock: opts.clock } : {};
  const pg = await openPostgres(cfg.postgres.url, {
    ...(cfg.postgres.schema ? { schema: cfg.postgres.schema } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
  });
  const redisOpts = { logger: opts.logger, hooks: opts.hooks };
  const redis: Redis = connectRedis(cfg.redis.url, redisOpts);
  const sub: Redis = connectRedis(cfg.redis.url, redisOpts);
  const ready = await waitReady(redis);
  await waitReady(sub);
  if (!ready) {
    opts.logger?.error(
      { store: 'redis', mode: cfg.redis_failure_mode },
      `redis unreachable at startup; counters and quotas are ${cfg.redis_failure_mode} until it is back`,
    );
  }
  const ctx: RedisContext = {
    redis,
    prefix: cfg.redis.key_prefix ?? 'portico:',
    mode: cfg.redis_failure_mode,
    logger: opts.logger,
    hooks: opts.hooks,
  };
  return {
    kind: 'distributed',
    counters: new RedisCounterStore(ctx, c),
    quotas: new RedisQuotaStore(ctx, c),
    tenants: new PgTenantStore(pg, c),
    keys: new PgKeyStore(pg, c),
    ledger: new PgLedgerStore(pg),
    responses: new PgResponseStore(pg, c),
    bus: new RedisInvalidationBus(ctx, sub),
    busStore: 'redis',
    ledgerStore: 'postgres',
    ping: async () => {
      const [r, p] = await Promise.all([
        redis.ping().then(
          () => true,
          () => false,
        ),
        pg.pool.query('SELECT 1').then(
          () => true,
          () => false,
        ),
      ]);
      return { redis: r, postgres: p };
    },
    closeConnections: async () => {
      redis.disconnect();
      sub.disconnect();
      await pg.pool.end();
    },
  };
}
