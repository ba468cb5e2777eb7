/**
 * createStateBackends(cfg): the one place that picks a family and wires its stores.
 *   embedded:    memory counters + SQLite (tenants, keys, ledger, quotas) under data_dir
 *   distributed: Redis (counters, in-flight, quotas, invalidation) + Postgres (tenants, keys, ledger),
 *                in distributed.ts, imported only in that mode (so embedded never loads ioredis or pg)
 */
import { holdStore, releaseStore } from './sqlite/backup.js';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  InvalidatingKeyStore,
  InvalidatingTenantStore,
  KeyResolver,
  TenantResolver,
  type BusCacheOptions,
} from './key-cache.js';
import { LedgerWriter, type LedgerWriterOptions } from './ledger-writer.js';
import { MemoryCounterStore } from './memory/counters.js';
import { MemoryKeyStore, MemoryLedgerStore, MemoryTenantStore } from './memory/catalog.js';
import { MemoryInvalidationBus } from './memory/invalidation.js';
import { MemoryQuotaStore } from './memory/quotas.js';
import type {
  BackendName,
  Clock,
  CounterStore,
  FailureMode,
  InvalidationBus,
  KeyStore,
  LedgerStore,
  QuotaStore,
  ResponseStore,
  StateHooks,
  StateLogger,
  TenantStore,
} from './ports.js';
import { openSqlite } from './sqlite/db.js';
import { SqliteKeyStore, SqliteLedgerStore, SqliteTenantStore } from './sqlite/catalog.js';
import { SqliteQuotaStore } from './sqlite/quotas.js';
import { SqliteInvalidationBus } from './sqlite/invalidation.js';
import { MemoryResponseStore } from './memory/responses.js';
import { SqliteResponseStore } from './sqlite/responses.js';

export type StateConfig =
  | { kind: 'embedded'; data_dir: string }
  | {
      kind: 'distributed';
      redis: { url: string; /** Default "portico:". */ key_prefix?: string };
      postgres: { url: string; /** Default "portico". */ schema?: string };
      redis_failure_mode: FailureMode;
    };

export interface StateOptions {
  logger?: StateLogger;
  hooks?: StateHooks;
  /** Inject time (tests). Without it Redis counters use Redis TIME. */
  clock?: Clock;
  keyCache?: Omit<BusCacheOptions, 'clock' | 'logger' | 'hooks' | 'busStore'>;
  ledgerWriter?: Omit<LedgerWriterOptions, 'logger' | 'hooks' | 'store'>;
}

export interface StateBackends {
  kind: 'embedded' | 'distributed' | 'memory';
  counters: CounterStore;
  quotas: QuotaStore;
  /** Writes announce themselves on the bus (admin API / CLI use these). */
  tenants: TenantStore;
  keys: KeyStore;
  ledger: LedgerStore;
  /** Stored Responses API responses (previous_response_id, GET/DELETE /v1/responses/{id}). */
  responses: ResponseStore;
  bus: InvalidationBus;
  /** Per-request authentication: plaintext key -> key info, cached, invalidated across replicas. */
  keyResolver: KeyResolver;
  /** Per-request tenant lookup, cached the same way. */
  tenantResolver: TenantResolver;
  /** Per-request usage records go here (batched, off the request path). */
  ledgerWriter: LedgerWriter;
  /** Liveness of each backing service (for /readyz). */
  ping(): Promise<Partial<Record<BackendName, boolean>>>;
  /** Flush the ledger, stop timers, close connections. */
  close(): Promise<void>;
}

/** The stores of one family, before the caches and the ledger writer are put around them. */
export interface StoreParts {
  kind: StateBackends['kind'];
  counters: CounterStore;
  quotas: QuotaStore;
  tenants: TenantStore;
  keys: KeyStore;
  ledger: LedgerStore;
  responses: ResponseStore;
  bus: InvalidationBus;
  busStore: BackendName;
  ledgerStore: BackendName;
  ping: () => Promise<Partial<Record<BackendName, boolean>>>;
  closeConnections: () => Promise<void>;
}

function assemble(p: StoreParts, opts: StateOptions): StateBackends {
  const cacheOpts: BusCacheOptions = {
    ...opts.keyCache,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
    busStore: p.busStore,
    catalogStore: p.ledgerStore,
  };
  const keys = new InvalidatingKeyStore(p.keys, p.bus);
  const tenants = new InvalidatingTenantStore(p.tenants, p.bus);
  const keyResolver = new KeyResolver(p.keys, p.bus, cacheOpts);
  const tenantResolver = new TenantResolver(p.tenants, p.bus, cacheOpts);
  const ledgerWriter = new LedgerWriter(p.ledger, {
    ...opts.ledgerWriter,
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
    store: p.ledgerStore,
  });
  let closed = false;
  return {
    kind: p.kind,
    counters: p.counters,
    quotas: p.quotas,
    tenants,
    keys,
    ledger: p.ledger,
    responses: p.responses,
    bus: p.bus,
    keyResolver,
    tenantResolver,
    ledgerWriter,
    async ping() {
      const r = await p.ping();
      for (const [store, up] of Object.entries(r) as [BackendName, boolean][])
        opts.hooks?.onBackendUp?.(store, up);
      return r;
    },
    async close() {
      if (closed) return;
      closed = true;
      keyResolver.close();
      tenantResolver.close();
      await ledgerWriter.close();
      await p.bus.close();
      await p.closeConnections();
    },
  };
}

/** Everything in process memory: tests and throwaway demos. Nothing survives a restart. */
export function createMemoryBackends(opts: StateOptions = {}): StateBackends {
  const c = opts.clock ? { clock: opts.clock } : {};
  const tenants = new MemoryTenantStore(c);
  return assemble(
    {
      kind: 'memory',
      counters: new MemoryCounterStore(c),
      quotas: new MemoryQuotaStore(c),
      tenants,
      keys: new MemoryKeyStore(tenants, c),
      ledger: new MemoryLedgerStore(),
      responses: new MemoryResponseStore(c),
      bus: new MemoryInvalidationBus(),
      busStore: 'memory',
      ledgerStore: 'memory',
      ping: async () => ({ memory: true }),
      closeConnections: async () => undefined,
    },
    opts,
  );
}

export async function createStateBackends(cfg: StateConfig, opts: StateOptions = {}): Promise<StateBackends> {
  const c = opts.clock ? { clock: opts.clock } : {};
  if (cfg.kind === 'embedded') {
    const db = openSqlite(cfg.data_dir);
    if (cfg.data_dir !== ':memory:') holdStore(cfg.data_dir);
    opts.hooks?.onBackendUp?.('sqlite', true);
    return assemble(
      {
        kind: 'embedded',
        // One replica: in-process counters are exact. Quotas persist so a restart keeps the totals.
        counters: new MemoryCounterStore(c),
        quotas: new SqliteQuotaStore(db, c),
        tenants: new SqliteTenantStore(db, c),
        keys: new SqliteKeyStore(db, c),
        ledger: new SqliteLedgerStore(db),
        responses: new SqliteResponseStore(db, c),
        bus: new SqliteInvalidationBus(db),
        busStore: 'sqlite',
        ledgerStore: 'sqlite',
        ping: async () => ({ sqlite: db.open }),
        closeConnections: async () => {
          db.close();
          if (cfg.data_dir !== ':memory:') releaseStore(cfg.data_dir);
        },
      },
      opts,
    );
  }

  // Redis and Postgres clients (ioredis, pg) are loaded only in distributed mode.
  const { openDistributedParts } = await import('./distributed.js');
  return assemble(await openDistributedParts(cfg, opts), opts);
}

/** A fresh, collision-free name (test schemas, key prefixes). */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

/** The SQLite file a data_dir holds (for backup docs and tests). */
export function sqlitePath(dataDir: string): string {
  return join(dataDir, 'portico.db');
}
