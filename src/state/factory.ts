/**
 * createStateBackends(cfg): the one place that picks a family and wires its stores.
 *   embedded:    memory counters + SQLite (tenants, keys, ledger, quotas) under data_dir
 *   distributed: Redis (counters, in-flight, quotas, invalidation) + Postgres (tenants, keys, ledger),
 *                in distributed.ts, imported only in that mode (so embedded never loads ioredis or pg)
 */
import { holdStore, releaseStore } from './sqlite/backup.js';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import {
  InvalidatingKeyStore,
  InvalidatingTenantStore,
  KeyResolver,
  TenantResolver,
  type BusCacheOptions,
} from './key-cache.js';
import { isRefusedData } from './errors.js';
import { LedgerWriter, type LedgerWriterOptions } from './ledger-writer.js';
import { LedgerJournal, type JournalOptions } from './ledger-journal.js';
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
import { lockDataDir } from './sqlite/gateway-lock.js';
import { SqliteInvalidationBus } from './sqlite/invalidation.js';
import { MemoryResponseStore } from './memory/responses.js';
import { SqliteResponseStore } from './sqlite/responses.js';

export type StateConfig =
  | {
      kind: 'embedded';
      data_dir: string;
      /** SQLite's page cache, MiB (default DEFAULT_SQLITE_CACHE_MB). */
      sqlite_cache_mb?: number;
      /** Ledger crash journal directory. Default <data_dir>/journal; '' turns it off. */
      journal_dir?: string;
    }
  | {
      kind: 'distributed';
      /** This replica's ledger crash journal directory (its own volume). '' turns it off. */
      journal_dir?: string;
      /**
       * journal_dir is a default, not the operator's choice: if it cannot be opened (a read-only
       * working directory), log an error and run without the journal instead of refusing to start.
       */
      journal_dir_defaulted?: boolean;
      redis: { url: string; /** Default "portico:". */ key_prefix?: string };
      postgres: {
        url: string;
        /** Default "portico". */
        schema?: string;
        /** Client-side bound on one query (usage reports: at least 60 s). Default 5000. */
        query_timeout_ms?: number;
        /** Bound on opening a connection or waiting for a pooled one. Default 5000. */
        connect_timeout_ms?: number;
      };
      redis_failure_mode: FailureMode;
    };

export interface StateOptions {
  logger?: StateLogger;
  hooks?: StateHooks;
  /** Inject time (tests). Without it Redis counters use Redis TIME. */
  clock?: Clock;
  keyCache?: Omit<BusCacheOptions, 'clock' | 'logger' | 'hooks' | 'busStore'>;
  ledgerWriter?: Omit<LedgerWriterOptions, 'logger' | 'hooks' | 'store' | 'journal'>;
  journal?: Omit<JournalOptions, 'logger'>;
  /**
   * Embedded: this process is the gateway that serves from `data_dir` (its quotas are decided in
   * memory), so no other gateway may use the directory at the same time (sqlite/gateway-lock.ts).
   * Tools that only read or edit the store (the CLI, tests) leave it off.
   */
  exclusive?: boolean;
}

/** What start-up replay of the ledger journal did. */
export interface JournalReplay {
  /** Journal directory in use (absent: no journal). */
  dir?: string;
  /** Records found in segments an earlier process left. */
  records: number;
  /** Of those, new to the ledger (the rest were already written, or refused). */
  inserted: number;
  /** Records the store refused for their data (logged with their id, not written, not kept). */
  refused: number;
  /** Quota commits re-applied (their confirmation was not journaled). */
  quotaCommits: number;
  /** Lines cut by the crash (skipped). */
  badLines: number;
  files: number;
  /** Set when replay failed; the files are kept for the next start. */
  error?: string;
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
  /** Per-request usage records go here (journaled, then batched off the request path). */
  ledgerWriter: LedgerWriter;
  /** What start-up replay of the ledger journal did. */
  journalReplay: JournalReplay;
  /** Probe each backing service now (bounded) and report the result to hooks.onBackendUp. */
  ping(): Promise<Partial<Record<BackendName, boolean>>>;
  /**
   * Reachability of each backing service as last seen (real operations, connection events, the
   * periodic probes of the distributed family); no I/O. For /ready.
   */
  health(): Partial<Record<BackendName, boolean>>;
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
  /** Default: every store up. */
  health?: () => Partial<Record<BackendName, boolean>>;
  closeConnections: () => Promise<void>;
  journal?: LedgerJournal;
  journalReplay?: JournalReplay;
}

/**
 * Replay what an earlier process left in the journal: ledger appends (idempotent by request id),
 * then the quota commits not marked confirmed (idempotent per reservation in every QuotaStore).
 * On success the old segments are deleted; on failure they stay for the next start. A record the
 * store refuses for its data is left out (logged, counted in `refused` and by onLedgerLost).
 */
export async function replayJournal(
  journal: LedgerJournal,
  ledger: LedgerStore,
  quotas: QuotaStore,
  logger?: StateLogger,
  hooks?: StateHooks,
): Promise<JournalReplay> {
  const left = journal.leftovers();
  const out: JournalReplay = {
    dir: journal.dir,
    records: left.entries.length,
    inserted: 0,
    refused: 0,
    quotaCommits: 0,
    badLines: left.badLines,
    files: left.files.length,
  };
  if (left.files.length === 0) return out;
  try {
    for (let i = 0; i < left.entries.length; i += 500) {
      const batch = left.entries.slice(i, i + 500).map((e) => e.r);
      try {
        out.inserted += await ledger.append(batch);
      } catch (err) {
        if (!isRefusedData(err)) throw err;
        // One record the store can never take must not keep the files, and every record in them,
        // from being replayed: append one by one and leave out what is refused (as LedgerWriter).
        for (const r of batch) {
          try {
            out.inserted += await ledger.append([r]);
          } catch (e) {
            if (!isRefusedData(e)) throw e;
            out.refused++;
            hooks?.onLedgerLost?.(1);
            logger?.error(
              { err: e, id: r.id, tenant: r.tenant, key_id: r.key_id, model: r.model, dir: journal.dir },
              'ledger store refused a usage record of the journal replay; dropped (the other records are written)',
            );
          }
        }
      }
    }
    // Issued 500 at a time and awaited together: a store that writes behind (embedded SQLite) puts
    // them in one write instead of one write each.
    const commits = left.entries.flatMap((e) => (e.q && !left.settled.has(e.r.id) ? [e.q] : []));
    // And those an earlier process gave up on (owed-quota.jsonl): never marked settled.
    commits.push(...left.owed);
    for (let i = 0; i < commits.length; i += 500) {
      await Promise.all(
        commits.slice(i, i + 500).map((q) => quotas.commit(q.res, { tokens: q.tokens, requests: 1 })),
      );
      out.quotaCommits += Math.min(500, commits.length - i);
    }
    journal.discardLeftovers();
    if (out.records > 0 || out.badLines > 0)
      logger?.warn(
        { ...out },
        'replayed the usage ledger journal an earlier gateway process left (it did not shut down cleanly)',
      );
  } catch (err) {
    out.error = err instanceof Error ? err.message : String(err);
    logger?.error(
      { err, dir: journal.dir },
      'ledger journal replay failed; its files are kept for the next start',
    );
  }
  return out;
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
    ...(p.journal ? { journal: p.journal } : {}),
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
    journalReplay: p.journalReplay ?? {
      records: 0,
      inserted: 0,
      refused: 0,
      quotaCommits: 0,
      badLines: 0,
      files: 0,
    },
    async ping() {
      const r = await p.ping();
      // The distributed family's health trackers report their own changes.
      if (!p.health)
        for (const [store, up] of Object.entries(r) as [BackendName, boolean][])
          opts.hooks?.onBackendUp?.(store, up);
      return r;
    },
    health() {
      return p.health ? p.health() : { [p.ledgerStore]: true };
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
    const db = openSqlite(cfg.data_dir, cfg.sqlite_cache_mb);
    let unlock: (() => void) | undefined;
    if (opts.exclusive && cfg.data_dir !== ':memory:') {
      try {
        unlock = lockDataDir(cfg.data_dir);
      } catch (err) {
        db.close();
        throw err;
      }
    }
    if (cfg.data_dir !== ':memory:') holdStore(cfg.data_dir);
    opts.hooks?.onBackendUp?.('sqlite', true);
    const quotas = new SqliteQuotaStore(db, c);
    const ledger = new SqliteLedgerStore(db);
    const journalDir =
      cfg.journal_dir ?? (cfg.data_dir === ':memory:' ? '' : defaultJournalDir(cfg.data_dir));
    let j: Awaited<ReturnType<typeof openJournal>>;
    try {
      j = await openJournal(journalDir, ledger, quotas, opts);
    } catch (err) {
      db.close();
      unlock?.();
      throw err;
    }
    return assemble(
      {
        kind: 'embedded',
        ...j,
        // One replica: in-process counters are exact. Quotas persist so a restart keeps the totals.
        counters: new MemoryCounterStore(c),
        quotas,
        tenants: new SqliteTenantStore(db, c),
        keys: new SqliteKeyStore(db, c),
        ledger,
        responses: new SqliteResponseStore(db, c),
        bus: new SqliteInvalidationBus(db),
        busStore: 'sqlite',
        ledgerStore: 'sqlite',
        ping: async () => ({ sqlite: db.open }),
        closeConnections: async () => {
          quotas.flush(); // queued commits (see SqliteQuotaStore) go in before the file closes
          db.close();
          unlock?.();
          if (cfg.data_dir !== ':memory:') releaseStore(cfg.data_dir);
        },
      },
      opts,
    );
  }

  // Redis and Postgres clients (ioredis, pg) are loaded only in distributed mode.
  const { openDistributedParts } = await import('./distributed.js');
  const parts = await openDistributedParts(cfg, opts);
  const j = await openJournal(
    cfg.journal_dir ?? '',
    parts.ledger,
    parts.quotas,
    opts,
    cfg.journal_dir_defaulted === true,
  );
  return assemble({ ...parts, ...j }, opts);
}

/** The embedded family's journal: next to the SQLite file. */
export function defaultJournalDir(dataDir: string): string {
  return join(dataDir, 'journal');
}

/**
 * The distributed family's default journal directory (relative to the working directory): named
 * after the stores it replays into, so a journal is never replayed into another deployment's
 * database.
 */
export function defaultDistributedJournalDir(target: {
  postgresUrl: string;
  schema?: string | undefined;
  redisUrl: string;
  keyPrefix?: string | undefined;
}): string {
  const h = createHash('sha256')
    .update(`${target.postgresUrl}\n${target.schema ?? ''}\n${target.redisUrl}\n${target.keyPrefix ?? ''}`)
    .digest('hex')
    .slice(0, 12);
  return join('.portico-data', `journal-${h}`);
}

async function openJournal(
  dir: string,
  ledger: LedgerStore,
  quotas: QuotaStore,
  opts: StateOptions,
  optional = false,
): Promise<{ journal?: LedgerJournal; journalReplay?: JournalReplay }> {
  if (dir === '') return {};
  let journal: LedgerJournal;
  try {
    journal = LedgerJournal.open(dir, {
      ...opts.journal,
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
  } catch (err) {
    if (optional) {
      opts.logger?.error(
        { err, dir },
        'cannot open the default usage ledger journal directory; running WITHOUT the journal (a crash may lose the last ~250 ms of ledger records). Set state.journal_dir to a writable directory on its own volume.',
      );
      return {};
    }
    throw new Error(
      `cannot open the usage ledger journal under ${dir}: ${err instanceof Error ? err.message : String(err)}. Set state.journal_dir to a writable directory (its own volume per replica), or to '' to run without the journal (a crash may then lose the last ~250 ms of ledger records).`,
      { cause: err },
    );
  }
  const journalReplay = await replayJournal(journal, ledger, quotas, opts.logger, opts.hooks);
  return { journal, journalReplay };
}

/** A fresh, collision-free name (test schemas, key prefixes). */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

/** The SQLite file a data_dir holds (for backup docs and tests). */
export function sqlitePath(dataDir: string): string {
  return join(dataDir, 'portico.db');
}
