/**
 * The distributed family: Redis (counters, in-flight, quotas, invalidation) + Postgres (tenants,
 * keys, ledger). Imported dynamically by createStateBackends() in distributed mode only, so an
 * embedded gateway never loads ioredis or pg.
 */
import type { Redis } from 'ioredis';
import type { StateConfig, StateOptions, StoreParts } from './factory.js';
import { BackendHealth } from './health.js';
import { closePostgres, openPostgres } from './postgres/db.js';
import { PgKeyStore, PgLedgerStore, PgTenantStore } from './postgres/catalog.js';
import { PgInvalidationVersion } from './postgres/invalidation.js';
import { PgResponseStore } from './postgres/responses.js';
import { connectRedis, waitReady, type RedisContext } from './redis/client.js';
import { RedisCounterStore } from './redis/counters.js';
import { RedisInvalidationBus } from './redis/invalidation.js';
import { RedisQuotaStore } from './redis/quotas.js';
import { DualInvalidationBus } from './dual-bus.js';

/** Period of the Redis probe (PING on both connections; each fails within the 1 s command timeout). */
const REDIS_PING_INTERVAL_MS = 5000;

export async function openDistributedParts(
  cfg: Extract<StateConfig, { kind: 'distributed' }>,
  opts: StateOptions,
): Promise<StoreParts> {
  const c = opts.clock ? { clock: opts.clock } : {};
  const pg = await openPostgres(cfg.postgres.url, {
    ...(cfg.postgres.schema ? { schema: cfg.postgres.schema } : {}),
    ...(cfg.postgres.query_timeout_ms !== undefined ? { queryTimeoutMs: cfg.postgres.query_timeout_ms } : {}),
    ...(cfg.postgres.connect_timeout_ms !== undefined
      ? { connectTimeoutMs: cfg.postgres.connect_timeout_ms }
      : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
  });
  const pgHealth = pg.health;
  // Redis is up while both its connections are: commands (counters, quotas) and pub/sub
  // (invalidation). Their events and a periodic PING of each feed one gauge.
  const conns: { redis?: Redis; sub?: Redis } = {};
  const pingOk = (r: Redis | undefined): Promise<boolean> =>
    r && r.status === 'ready'
      ? r.ping().then(
          () => true,
          () => false,
        )
      : Promise.resolve(false);
  // No logger: connectRedis logs each connection's failures already.
  const redisHealth = new BackendHealth('redis', {
    hooks: opts.hooks,
    sources: ['commands', 'pubsub'],
    initiallyUp: false,
    intervalMs: REDIS_PING_INTERVAL_MS,
    probe: async () => {
      const [a, b] = await Promise.all([pingOk(conns.redis), pingOk(conns.sub)]);
      return { commands: a, pubsub: b };
    },
  });
  const redisOpts = { logger: opts.logger, hooks: opts.hooks };
  const redis = connectRedis(cfg.redis.url, { ...redisOpts, onUp: (up) => redisHealth.set('commands', up) });
  const sub = connectRedis(cfg.redis.url, { ...redisOpts, onUp: (up) => redisHealth.set('pubsub', up) });
  conns.redis = redis;
  conns.sub = sub;
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
    // Redis pub/sub, and a version in Postgres for a replica that cannot reach Redis (dual-bus.ts).
    bus: new DualInvalidationBus(new RedisInvalidationBus(ctx, sub), new PgInvalidationVersion(pg), {
      logger: opts.logger,
      hooks: opts.hooks,
    }),
    busStore: 'redis',
    ledgerStore: 'postgres',
    // Probes now (each bounded: Redis by its command timeout, Postgres by PG_PING_TIMEOUT_MS).
    ping: async () => {
      const [r, p] = await Promise.all([redisHealth.check(), pgHealth ? pgHealth.check() : true]);
      return { redis: r, postgres: p };
    },
    // What the probes and the real operations last showed; no I/O (for /ready).
    health: () => ({ redis: redisHealth.up, postgres: pgHealth ? pgHealth.up : true }),
    closeConnections: async () => {
      redisHealth.close();
      redis.disconnect();
      sub.disconnect();
      await closePostgres(pg);
    },
  };
}
