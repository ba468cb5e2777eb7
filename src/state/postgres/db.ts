/** Postgres pool and schema migrations (applied on startup, under an advisory lock so replicas can start together). */
import pg from 'pg';
import type { BackendName, StateHooks, StateLogger } from '../ports.js';

export interface PgContext {
  pool: pg.Pool;
  /** Quoted schema name, prefixed to every table. */
  s: string;
  logger?: StateLogger | undefined;
  hooks?: StateHooks | undefined;
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
];

export async function openPostgres(
  url: string,
  opts: { schema?: string; logger?: StateLogger; hooks?: StateHooks; max?: number } = {},
): Promise<PgContext> {
  const schema = opts.schema ?? 'portico';
  if (!SCHEMA_RE.test(schema)) throw new RangeError(`postgres schema must match ${SCHEMA_RE}, got ${schema}`);
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, connectionTimeoutMillis: 5000 });
  const store: BackendName = 'postgres';
  pool.on('error', (err) => {
    // An idle client lost its connection; the pool replaces it. Report, do not crash.
    opts.hooks?.onBackendUp?.(store, false);
    opts.logger?.warn({ err, store }, 'postgres idle client error');
  });
  const ctx: PgContext = { pool, s: `"${schema}"`, logger: opts.logger, hooks: opts.hooks };
  try {
    await migrate(ctx, schema);
  } catch (e) {
    await pool.end();
    throw e;
  }
  opts.hooks?.onBackendUp?.(store, true);
  return ctx;
}

async function migrate(ctx: PgContext, schema: string): Promise<void> {
  const c = await ctx.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`portico-migrate:${schema}`]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${ctx.s}`);
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${ctx.s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const r = await c.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${ctx.s}.schema_migrations`);
    const current = r.rows[0]?.v ?? 0;
    for (let v = current; v < MIGRATIONS.length; v++) {
      const m = MIGRATIONS[v];
      if (!m) break;
      await c.query(m(ctx.s));
      await c.query(`INSERT INTO ${ctx.s}.schema_migrations (version) VALUES ($1)`, [v + 1]);
    }
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** Run fn in a transaction on one pooled client. */
export async function withTx<T>(ctx: PgContext, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await ctx.pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** Drop the schema and everything in it (tests). */
export async function dropSchema(ctx: PgContext): Promise<void> {
  await ctx.pool.query(`DROP SCHEMA IF EXISTS ${ctx.s} CASCADE`);
}
