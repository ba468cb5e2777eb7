/**
 * Shared set-up for the quota drills (quota-no-max-tokens, crash-reservations): gateway processes
 * (`portico start` through tsx) on free ports in embedded mode (SQLite under a temp data_dir) or
 * distributed mode (a unique Redis key prefix and Postgres schema, removed afterwards), the
 * simulator over HTTP, and the admin view of a tenant's quota tally.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import pg from 'pg';
import { Redis } from 'ioredis';
import { buildSimServer, type ReceivedRequest } from '../../src/sim/server.js';
import type { SimOptionsInput } from '../../src/config/schema.js';
import {
  freePort,
  startGatewayProcess,
  stopGatewayProcess,
  type GatewayProcess,
} from '../support/processes.js';

export const REDIS_URL = process.env.PORTICO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_CANDIDATES = process.env.PORTICO_TEST_POSTGRES_URL
  ? [process.env.PORTICO_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];
export const ADMIN_TOKEN = 'drill-admin-token';
/** Gateway start-up through tsx can take long on a loaded, shared machine. */
const START_TIMEOUT_MS = 120_000;
const start = (file: string, port: number): Promise<GatewayProcess> =>
  startGatewayProcess(file, port, undefined, START_TIMEOUT_MS);

/** A reachable Postgres URL, or why Redis/Postgres cannot be used. */
export async function distributedServices(): Promise<{ pgUrl: string } | { reason: string }> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    return { reason: `redis unreachable at ${REDIS_URL}: ${String(e)}` };
  } finally {
    r.disconnect();
  }
  for (const url of PG_CANDIDATES) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('select 1');
      await c.end();
      return { pgUrl: url };
    } catch {
      await c.end().catch(() => undefined);
    }
  }
  return { reason: `postgres unreachable (${PG_CANDIDATES.join(', ')})` };
}

export interface HttpSim {
  url: string;
  baseURL: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/** The simulator over HTTP on a free port (an OpenAI-compatible backend every replica shares). */
export async function startHttpSim(sim: SimOptionsInput, recordRequests = 0): Promise<HttpSim> {
  const { app, received } = buildSimServer({ sim, models: ['sim'], recordRequests });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    baseURL: `${url}/v1`,
    received,
    close: async () => {
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
    },
  };
}

export type StateMode = { kind: 'embedded' } | { kind: 'distributed'; pgUrl: string };

/** A set of gateway processes sharing one config file (and one state). */
export class Fleet {
  readonly dir: string;
  readonly file: string;
  readonly procs: GatewayProcess[] = [];
  readonly ports: number[] = [];
  readonly #mode: StateMode;
  readonly #prefix: string;
  readonly #schema: string;

  private constructor(dir: string, file: string, mode: StateMode, prefix: string, schema: string) {
    this.dir = dir;
    this.file = file;
    this.#mode = mode;
    this.#prefix = prefix;
    this.#schema = schema;
  }

  /** Write the config (with `state` filled in for the mode) and start `replicas` processes. */
  static async start(
    mode: StateMode,
    replicas: number,
    config: Record<string, unknown>,
    stateOverrides: Record<string, unknown> = {},
  ): Promise<Fleet> {
    const dir = await mkdtemp(join(tmpdir(), 'portico-drill-'));
    const tag = randomBytes(4).toString('hex');
    const prefix = `portico-drill-${tag}:`;
    const schema = `portico_drill_${tag}`;
    const state =
      mode.kind === 'embedded'
        ? { kind: 'embedded', data_dir: join(dir, 'data') }
        : {
            kind: 'distributed',
            redis: { url: REDIS_URL, key_prefix: prefix },
            postgres: { url: mode.pgUrl, schema },
            redis_failure_mode: 'fail_closed',
            // The replicas' ledger journals (each takes its own slot under it), removed with the fleet.
            journal_dir: join(dir, 'journal'),
          };
    const file = join(dir, 'portico.yaml');
    await writeFile(
      file,
      stringify({
        server: { host: '127.0.0.1', port: 0 },
        logging: { level: 'warn' },
        admin: { token: ADMIN_TOKEN },
        state: { ...state, ...stateOverrides },
        ...config,
      }),
    );
    const fleet = new Fleet(dir, file, mode, prefix, schema);
    try {
      // The first one creates the Postgres schema; the others start together.
      for (let i = 0; i < replicas; i++) fleet.ports.push(await freePort());
      fleet.procs.push(await start(file, fleet.ports[0] as number));
      fleet.procs.push(...(await Promise.all(fleet.ports.slice(1).map((p) => start(file, p)))));
    } catch (err) {
      await fleet.close();
      throw err;
    }
    return fleet;
  }

  /** The Postgres schema of a distributed fleet. */
  get schema(): string {
    return this.#schema;
  }

  get urls(): string[] {
    return this.procs.map((p) => p.url);
  }

  /** kill -9 replica i (no flush, no goodbye). */
  async kill(i: number): Promise<void> {
    const p = this.procs[i];
    if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
    const exited = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGKILL');
    await exited;
  }

  /** Start replica i again on its port. */
  async restart(i: number): Promise<GatewayProcess> {
    const p = await start(this.file, this.ports[i] as number);
    this.procs[i] = p;
    return p;
  }

  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => stopGatewayProcess(p)));
    await rm(this.dir, { recursive: true, force: true });
    if (this.#mode.kind === 'distributed') {
      const c = new pg.Client({ connectionString: this.#mode.pgUrl });
      await c.connect();
      await c.query(`drop schema if exists ${this.#schema} cascade`);
      await c.end();
      const r = new Redis(REDIS_URL);
      let cursor = '0';
      for (let i = 0; i < 10_000; i++) {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${this.#prefix}*`, 'COUNT', 1000);
        if (keys.length) await r.del(...keys);
        cursor = next;
        if (cursor === '0') break;
      }
      r.disconnect();
    }
  }
}

export interface QuotaTally {
  usedTokens: number;
  usedRequests: number;
  reservedTokens: number;
  reservedRequests: number;
}

/** The tenant's daily quota tally as the admin API reports it. */
export async function dailyTally(url: string, tenant: string): Promise<QuotaTally> {
  const r = await fetch(`${url}/admin/tenants/${tenant}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (!r.ok) throw new Error(`GET /admin/tenants/${tenant}: ${r.status} ${await r.text()}`);
  const body = (await r.json()) as { usage: { day: QuotaTally } };
  return body.usage.day;
}

/** Wait until no reservation of the tenant is held (settles run after the response is sent). */
export async function settledTally(url: string, tenant: string, timeoutMs = 10_000): Promise<QuotaTally> {
  const until = Date.now() + timeoutMs;
  let t = await dailyTally(url, tenant);
  while (t.reservedTokens > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    t = await dailyTally(url, tenant);
  }
  return t;
}

export const fmt = (n: number): string => n.toLocaleString('en-US');
