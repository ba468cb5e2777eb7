// Runs a real Prometheus (the `prometheus` binary of the Debian package) against a loopback
// exporter that serves every catalogue metric with synthetic values, then evaluates every
// dashboard expression and every alert expression through the HTTP API. This catches what a
// syntax check cannot: vector-matching errors (many-to-many, missing `on`), joins that never
// match, label filters that select nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DASHBOARDS_DIR,
  dashboardQueries,
  hasTool,
  loadAlertRules,
  loadCatalog,
  requireTool,
  substituteGrafanaVariables,
  type Catalog,
} from './helpers.js';

/** Label values for labels the catalogue does not enumerate. */
const EXTRA_VALUES: Record<string, string[]> = { status: ['200', '500'] };

/** Prometheus exposition text with every catalogue metric; counters grow with `tick`. */
function syntheticExposition(catalog: Catalog, tick: number): string {
  const lines: string[] = [];
  for (const m of catalog.metrics) {
    if (m.name === 'up') continue; // Prometheus's own
    let combos: string[][] = [[]];
    for (const label of m.labels) {
      const values = catalog.labelValues[label]?.slice(0, 2) ?? EXTRA_VALUES[label] ?? ['a', 'b'];
      combos = combos.flatMap((c) => values.map((v) => [...c, `${label}="${v}"`])).slice(0, 32);
    }
    for (const combo of combos) {
      const labels = combo.join(',');
      if (m.type === 'histogram') {
        const buckets: [string, number][] = [
          ['0.1', 1],
          ['1', 3],
          ['2.5', 4],
          ['+Inf', 5],
        ];
        for (const [le, n] of buckets)
          lines.push(`${m.name}_bucket{${[...combo, `le="${le}"`].join(',')}} ${n * tick}`);
        lines.push(`${m.name}_sum{${labels}} ${3 * tick}`, `${m.name}_count{${labels}} ${5 * tick}`);
      } else {
        lines.push(`${m.name}{${labels}} ${m.type === 'counter' ? tick : 1}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

const tmp = mkdtempSync(join(tmpdir(), 'portico-live-prom-'));
let exporter: Server | undefined;
let prometheus: ChildProcess | undefined;
let apiBase = '';
let promLog = '';

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A port that was free a moment ago (Prometheus cannot report a port-0 listener's port). */
async function freePort(): Promise<number> {
  const probe = createServer();
  const port = await listen(probe);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

interface ApiReply {
  status: string;
  error?: string;
  data?: { result?: { value?: [number, string] }[] };
}

/** One API query on a fresh connection (no keep-alive socket left open after the tests). */
function query(expr: string): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const req = httpGet(
      `${apiBase}/api/v1/query?query=${encodeURIComponent(expr)}`,
      { agent: false, timeout: 5_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body) as ApiReply);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('query timed out')));
    req.on('error', reject);
  });
}

before(async () => {
  if (!hasTool('prometheus')) return;
  const catalog = loadCatalog();
  let tick = 1;
  exporter = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(syntheticExposition(catalog, tick++));
  });
  const exporterPort = await listen(exporter);
  const port = await freePort();
  writeFileSync(
    join(tmp, 'prometheus.yml'),
    [
      'global: {scrape_interval: 500ms, evaluation_interval: 1s}',
      'scrape_configs:',
      '  - job_name: portico',
      `    static_configs: [{targets: ['127.0.0.1:${exporterPort}']}]`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(tmp, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(tmp, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr?.on('data', (chunk: Buffer) => {
    promLog = (promLog + chunk.toString()).slice(-4000);
  });
  apiBase = `http://127.0.0.1:${port}`;
  // Wait (bounded) until a few scrapes are stored, so that rate() has data.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await query('count_over_time(up{job="portico"}[1m])');
      const n = Number(r.data?.result?.[0]?.value?.[1] ?? 0);
      if (n >= 3) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || prometheus.exitCode !== null) {
      throw new Error(`prometheus did not come up with data within 30s:\n${promLog}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
});

after(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
    prometheus.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
    clearTimeout(timer);
    if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
  }
  if (exporter) await new Promise<void>((resolve) => exporter?.close(() => resolve()));
  rmSync(tmp, { recursive: true, force: true });
});

/** Dashboard queries that are legitimately empty against one fresh scrape job. */
function mayBeEmpty(expr: string): boolean {
  return /offset 1d/.test(expr) || /job="portico-engine"/.test(expr);
}

test('every dashboard expression evaluates without error and returns data on a live Prometheus', async (t) => {
  if (!requireTool(t, 'prometheus')) return;
  const vars = {
    tenant: '.*',
    model: '.*',
    backend: '.*',
    instance: '.*',
    __rate_interval: '30s',
    __interval: '15s',
  };
  const queries = readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .flatMap((file) =>
      dashboardQueries(file).map((q) => ({ ...q, expr: substituteGrafanaVariables(q.expr, vars) })),
    );
  const problems: string[] = [];
  // A few at a time: quick, without flooding the server.
  for (let i = 0; i < queries.length; i += 8) {
    await Promise.all(
      queries.slice(i, i + 8).map(async (q) => {
        const r = await query(q.expr);
        const where = `${q.dashboard}/${q.panel} [${q.refId}]`;
        if (r.status !== 'success') problems.push(`${where}: ${r.error ?? r.status}`);
        else if ((r.data?.result?.length ?? 0) === 0 && !mayBeEmpty(q.expr))
          problems.push(`${where}: no data for ${q.expr}`);
      }),
    );
  }
  const checked = queries.length;
  assert.ok(checked > 90, `only ${checked} queries`);
  assert.deepEqual(problems, []);
});

test('every alert expression evaluates without error on a live Prometheus', async (t) => {
  if (!requireTool(t, 'prometheus')) return;
  const problems: string[] = [];
  for (const rule of loadAlertRules()) {
    const r = await query(rule.expr);
    if (r.status !== 'success') problems.push(`${rule.alert}: ${r.error ?? r.status}`);
  }
  assert.deepEqual(problems, []);
});
