/** Test support for multi-process tests: free ports, Redis reachability, gateway child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Why Redis cannot be used (undefined when it answers PING). */
export async function redisUnreachable(url: string): Promise<string | undefined> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await r.connect();
    await r.ping();
    return undefined;
  } catch (e) {
    return `redis unreachable at ${url}: ${String(e)}`;
  } finally {
    r.disconnect();
  }
}

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
}

/**
 * `portico start` as a child process (through tsx); resolves once `ready(url)` says so (default:
 * /health), or fails after `startTimeoutMs` (drills on a loaded machine allow more).
 */
export async function startGatewayProcess(
  configFile: string,
  port: number,
  ready: (url: string) => Promise<boolean> = async (url) => (await fetch(`${url}/health`)).ok,
  startTimeoutMs = 30_000,
): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', 'start', '--config', configFile, '--port', String(port)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const url = `http://127.0.0.1:${port}`;
  // Ready only once this child said it listens there: another test's process may have taken the
  // port between freePort() and this child's listen (then it would answer the probe, not this one).
  const banner = `is listening on ${url}`;
  let listening = false;
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    if (!listening && err.includes(banner)) listening = true;
  });
  const until = Date.now() + startTimeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`gateway exited: ${err}`);
    try {
      if (listening && (await ready(url))) return { child, url };
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`gateway did not start: ${err}`);
}

export async function stopGatewayProcess(p: GatewayProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

const PG_CANDIDATES = process.env.PORTICO_TEST_POSTGRES_URL
  ? [process.env.PORTICO_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

/** A Postgres URL that answers `select 1`, or why none does. */
export async function reachablePostgres(): Promise<{ url: string } | { reason: string }> {
  const { default: pg } = await import('pg');
  for (const url of PG_CANDIDATES) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.query('select 1');
      await c.end();
      return { url };
    } catch {
      await c.end().catch(() => undefined);
    }
  }
  return { reason: `postgres unreachable (${PG_CANDIDATES.join(', ')})` };
}

/** Drop the Postgres schemas a test made (its own, uniquely named), and the Redis keys under its prefixes. */
export async function dropTestState(
  pgUrl: string | undefined,
  schemas: readonly string[],
  redisUrl?: string,
  prefixes: readonly string[] = [],
): Promise<void> {
  if (pgUrl && schemas.length > 0) {
    const { default: pgLib } = await import('pg');
    const c = new pgLib.Client({ connectionString: pgUrl });
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await c.end();
  }
  if (redisUrl && prefixes.length > 0) {
    const r = new Redis(redisUrl);
    for (const p of prefixes) {
      const keys = await r.keys(`${p}*`);
      if (keys.length) await r.del(...keys);
    }
    r.disconnect();
  }
}
