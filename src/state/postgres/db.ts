/** Postgres pool and schema migrations (applied on startup, under an advisory lock so replicas can start together). */
import pg from 'pg';
import {
  StateConflictError,
  StateInvalidInputError,
  StateNotFoundError,
  StateUnavailableError,
} from '../errors.js';
import { BackendHealth } from '../health.js';
import type { BackendName, PortName, StateHooks, StateLogger } from '../ports.js';

export interface PgContext {
  pool: pg.Pool;
  /** Quoted schema name, prefixed to every table. */
  s: string;
  logger?: StateLogger | undefined;
  hooks?: StateHooks | undefined;
  /** portico_state_backend_up{store="postgres"}: real queries' outcomes plus a periodic probe. */
  health?: BackendHealth | undefined;
  /** Client-side bound on one query (state.postgres.query_timeout_ms). */
  queryTimeoutMs?: number | undefined;
}

/** Defaults of state.postgres.query_timeout_ms / connect_timeout_ms. */
export const DEFAULT_PG_QUERY_TIMEOUT_MS = 5000;
export const DEFAULT_PG_CONNECT_TIMEOUT_MS = 5000;
/** Usage reports (aggregates over the ledger) may legitimately take longer than a lookup. */
export const PG_REPORT_TIMEOUT_MS = 60_000;
/** The health probe's period and bound. */
export const PG_PING_INTERVAL_MS = 5000;
export const PG_PING_TIMEOUT_MS = 2000;

/**
 * What a Postgres failure means for the caller:
 *   down      — no answer from the server (connection refused, reset or terminated, a timeout,
 *               the server shutting down or refusing logins): 503, and the store counts as down;
 *   transient — the server answered but could not do it now (deadlock, serialization failure,
 *               lock or statement timeout, disk full, out of memory), or no pooled connection
 *               came free in time: 503, the store's state unchanged;
 *   other     — data errors (22xxx), constraint violations (23xxx), bugs: the caller's business.
 */
export function pgFailure(e: unknown): 'down' | 'transient' | 'other' {
  if (
    e instanceof StateUnavailableError ||
    e instanceof StateConflictError ||
    e instanceof StateNotFoundError ||
    e instanceof StateInvalidInputError
  )
    return 'other';
  if (e instanceof pg.DatabaseError) {
    const code = e.code ?? '';
    // 08 connection exception, 28 invalid authorization (credentials changed), 3D database gone,
    // 57P01-57P05 shutdown / cannot connect now / database dropped / idle session timeout,
    // 53300 too many connections.
    if (/^(08|28|3D)/.test(code) || /^57P0[1-5]$/.test(code) || code === '53300') return 'down';
    if (/^(40|53|55P03|57014|58|25P03)/.test(code)) return 'transient';
    return 'other';
  }
  if (!(e instanceof Error)) return 'other';
  if (
    e instanceof TypeError ||
    e instanceof RangeError ||
    e instanceof SyntaxError ||
    e instanceof ReferenceError
  )
    return 'other';
  // Every pooled connection busy past connect_timeout_ms: the queries holding them will tell
  // whether the server answers; this one is refused (503) either way.
  if (e.message === 'timeout exceeded when trying to connect') return 'transient';
  // Node system and TLS errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ENOTFOUND, EPIPE, certificate
  // problems; AggregateError when every address refused) carry a string code that no SQLSTATE has.
  if ('code' in e && typeof e.code === 'string' && e.code !== '') return 'down';
  // The driver's and the pool's own words for a lost or never-made connection.
  if (
    /^(Connection terminated|timeout expired|Query read timeout|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end|The server does not support SSL|There was an error establishing an SSL connection|SASL: )/.test(
      e.message,
    )
  )
    return 'down';
  return 'other';
}

/**
 * Run one store operation against Postgres: a success marks the store up; a failure that means
 * Postgres cannot answer becomes StateUnavailableError (the gateway answers 503
 * `state_unavailable`) and, when the server is unreachable, marks the store down. Data errors and
 * constraint violations pass through unchanged for the caller to map (400, 404, 409).
 * `report`: count it in portico_state_errors_total (off where the caller already reports it: the
 * key cache's lookups, the ledger writer's appends).
 */
/** Operations pgRun runs again after an ended connection: reads, and the ledger's idempotent append. */
const RETRIED = new Set(['get', 'list', 'lookup', 'query', 'count', 'append']);
/** How many ended connections in a row a read (or the health probe) goes past: the pool's size. */
const ENDED_RETRIES = 10;

/** The connection was ended under the query (by the server, or its socket): nothing was decided on it. */
function endedConnection(e: unknown): boolean {
  if (e instanceof pg.DatabaseError) return e.code === '57P01' || e.code === '57P05';
  // Not "Connection terminated due to connection timeout": a server that does not answer (a
  // partition) would then make every read wait for connect_timeout_ms once per retry.
  return e instanceof Error && e.message === 'Connection terminated unexpectedly';
}

export async function pgRun<T>(
  ctx: PgContext,
  port: PortName,
  op: string,
  fn: () => Promise<T>,
  report = true,
): Promise<T> {
  try {
    let out: T;
    // A pooled connection the server ended while it sat idle (pg_terminate_backend, an idle
    // timeout, a failover) can be handed out before the pool has seen its end: a read, or an
    // idempotent ledger append, runs again (on the next connection) instead of failing.
    for (let tries = 0; ; tries++) {
      try {
        out = await fn();
        break;
      } catch (err) {
        if (tries >= ENDED_RETRIES || !RETRIED.has(op) || !endedConnection(err)) throw err;
      }
    }
    ctx.health?.observe(true);
    return out;
  } catch (error) {
    const kind = pgFailure(error);
    if (kind === 'other') throw error;
    if (kind === 'down') ctx.health?.observe(false);
    if (report) ctx.hooks?.onError?.({ store: 'postgres', port, op, mode: 'fail_closed', error });
    throw new StateUnavailableError(
      'postgres',
      `postgres ${kind === 'down' ? 'unreachable' : 'could not answer'} for ${port}.${op}: ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
}

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** Append-only: entry i moves the schema to version i + 1. `S` is the quoted schema. */
export const MIGRATIONS: readonly ((S: string) => string)[] = [
  (S) => `
  CREATE TABLE ${S}.tenants (
    id text PRIMARY KEY,
    display_name text NOT NULL,
    company text,
    industry text,
    system_prompt text,
    prompt_policy jsonb,
    allowed_models jsonb NOT NULL DEFAULT '[]',
    limits jsonb,
    priority text NOT NULL,
    source text NOT NULL CHECK (source IN ('config','api')),
    created_at timestamptz NOT NULL
  );
  CREATE TABLE ${S}.api_keys (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES ${S}.tenants (id) ON DELETE CASCADE,
    label text NOT NULL,
    hash text NOT NULL UNIQUE,
    prefix text NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    limits jsonb,
    created_at timestamptz NOT NULL
  );
  CREATE INDEX api_keys_tenant ON ${S}.api_keys (tenant_id);
  CREATE TABLE ${S}.ledger (
    id text PRIMARY KEY,
    time timestamptz NOT NULL,
    tenant text NOT NULL,
    key_id text,
    model text NOT NULL,
    backend text,
    tokens_in integer NOT NULL,
    tokens_out integer NOT NULL,
    estimated boolean NOT NULL,
    cost_usd double precision NOT NULL,
    latency_ms integer NOT NULL,
    status integer NOT NULL,
    cache_hit boolean NOT NULL,
    request_id text NOT NULL
  );
  CREATE INDEX ledger_tenant_time ON ${S}.ledger (tenant, time);
  CREATE INDEX ledger_time ON ${S}.ledger (time);
  `,
  // Stored Responses API responses (store: true), per tenant, with an expiry. JSON as text: jsonb
  // refuses \u0000 in strings.
  (S) => `
  CREATE TABLE ${S}.responses (
    tenant text NOT NULL,
    id text NOT NULL,
    data text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (tenant, id)
  );
  CREATE INDEX responses_expires ON ${S}.responses (expires_at);
  `,
  // Ledger records of answers cut short (cancelled or broken-off streams), billed for what was delivered.
  (S) => `
  ALTER TABLE ${S}.ledger ADD COLUMN partial boolean NOT NULL DEFAULT false;
  `,
  // The invalidation version every replica polls (postgres/invalidation.ts): a revocation or tenant
  // edit reaches the other replicas through Postgres too, when Redis cannot carry it.
  (S) => `
  CREATE TABLE ${S}.invalidation (id boolean PRIMARY KEY DEFAULT true CHECK (id), version bigint NOT NULL);
  INSERT INTO ${S}.invalidation (id, version) VALUES (true, 0);
  `,
];

export interface PgOptions {
  schema?: string;
  logger?: StateLogger;
  hooks?: StateHooks;
  max?: number;
  /** Client-side bound on each query; default DEFAULT_PG_QUERY_TIMEOUT_MS. */
  queryTimeoutMs?: number;
  /** Bound on opening a connection and on waiting for a pooled one; default DEFAULT_PG_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  /** Health probe period (0: no timer); default PG_PING_INTERVAL_MS. */
  pingIntervalMs?: number;
}

export async function openPostgres(url: string, opts: PgOptions = {}): Promise<PgContext> {
  const schema = opts.schema ?? 'portico';
  if (!SCHEMA_RE.test(schema)) throw new RangeError(`postgres schema must match ${SCHEMA_RE}, got ${schema}`);
  const queryTimeoutMs = opts.queryTimeoutMs ?? DEFAULT_PG_QUERY_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULT_PG_CONNECT_TIMEOUT_MS,
    // A server that stops answering without closing the connection (a partition) fails the query
    // after this instead of after the kernel's TCP timeouts; the pool then drops that connection.
    query_timeout: queryTimeoutMs,
    keepAlive: true,
  });
  const store: BackendName = 'postgres';
  const ctx: PgContext = { pool, s: `"${schema}"`, logger: opts.logger, hooks: opts.hooks, queryTimeoutMs };
  pool.on('error', (err) => {
    // An idle client lost its connection (terminated, idle timeout on the server, a restart); the
    // pool replaces it on demand. Whether Postgres itself is down is for a probe to say.
    opts.logger?.warn({ err, store }, 'postgres idle client error');
    void ctx.health?.check();
  });
  try {
    await migrate(ctx, schema);
  } catch (e) {
    await pool.end();
    throw e;
  }
  ctx.health = new BackendHealth(store, {
    hooks: opts.hooks,
    logger: opts.logger,
    intervalMs: opts.pingIntervalMs ?? PG_PING_INTERVAL_MS,
    timeoutMs: PG_PING_TIMEOUT_MS,
    probe: async () => {
      // A pool closed without closePostgres (tests): nothing left to watch.
      if (pool.ending) {
        ctx.health?.close();
        return true;
      }
      // Every connection busy and requests queued: the probe would only wait its turn (and time
      // out on a busy but healthy server); the queries under way give the verdict.
      if (pool.waitingCount > 0) return undefined;
      // Right after pg_terminate_backend (or a failover) several idle connections may be ended
      // whose ends the pool has not seen yet: one of them failing says nothing about the server.
      for (let tries = 0; ; tries++) {
        try {
          await pool.query(timed('SELECT 1', undefined, PG_PING_TIMEOUT_MS));
          return true;
        } catch (err) {
          if (tries >= ENDED_RETRIES || !endedConnection(err)) throw err;
        }
      }
    },
  });
  return ctx;
}

/** A query with its own client-side timeout (pg reads `query_timeout` per query; @types/pg omits it). */
export function timed(text: string, values: unknown[] | undefined, ms: number): pg.QueryConfig {
  const q: pg.QueryConfig & { query_timeout: number } = {
    text,
    query_timeout: ms,
    ...(values ? { values } : {}),
  };
  return q;
}

/** Stop the health probe and close the pool. */
export async function closePostgres(ctx: PgContext): Promise<void> {
  ctx.health?.close();
  await ctx.pool.end();
}

/**
 * A client checked out of the pool: a connection lost while it is out makes the client emit
 * 'error', which with no listener is an uncaught exception (the process exits). Listen for it
 * while it is out; `done` releases it, destroying it when its connection is unusable.
 */
async function checkout(ctx: PgContext): Promise<{ c: pg.PoolClient; done: (err?: unknown) => void }> {
  const c = await ctx.pool.connect();
  let lost: Error | undefined;
  const onError = (err: Error): void => {
    lost = err;
  };
  c.on('error', onError);
  return {
    c,
    done: (err?: unknown) => {
      c.removeListener('error', onError);
      const broken = lost ?? (err !== undefined && pgFailure(err) === 'down' ? err : undefined);
      c.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
    },
  };
}

/** Bound on each migration statement (the advisory lock wait included). */
const MIGRATE_TIMEOUT_MS = 600_000;

async function migrate(ctx: PgContext, schema: string): Promise<void> {
  const { c, done } = await checkout(ctx);
  // Not the per-query bound: another replica may hold the lock while it migrates a large ledger.
  const q = <R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> =>
    c.query<R>(timed(text, values, MIGRATE_TIMEOUT_MS));
  let failed: unknown;
  try {
    await q('BEGIN');
    await q('SELECT pg_advisory_xact_lock(hashtext($1))', [`portico-migrate:${schema}`]);
    await q(`CREATE SCHEMA IF NOT EXISTS ${ctx.s}`);
    await q(
      `CREATE TABLE IF NOT EXISTS ${ctx.s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const r = await q<{ v: number | null }>(`SELECT max(version) AS v FROM ${ctx.s}.schema_migrations`);
    const current = r.rows[0]?.v ?? 0;
    for (let v = current; v < MIGRATIONS.length; v++) {
      const m = MIGRATIONS[v];
      if (!m) break;
      await q(m(ctx.s));
      await q(`INSERT INTO ${ctx.s}.schema_migrations (version) VALUES ($1)`, [v + 1]);
    }
    await q('COMMIT');
  } catch (e) {
    failed = e;
    if (pgFailure(e) !== 'down') await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    done(failed);
  }
}

/**
 * Run fn in a transaction on one pooled client. When the connection is lost or a query timed out
 * the client is destroyed, not rolled back: a ROLLBACK would queue behind the query that never
 * answered (another query timeout), and the server rolls back a transaction whose connection is gone.
 */
export async function withTx<T>(ctx: PgContext, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const { c, done } = await checkout(ctx);
  let failed: unknown;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    failed = e;
    if (pgFailure(e) !== 'down') await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    done(failed);
  }
}

/** Drop the schema and everything in it (tests). */
export async function dropSchema(ctx: PgContext): Promise<void> {
  await ctx.pool.query(`DROP SCHEMA IF EXISTS ${ctx.s} CASCADE`);
}
