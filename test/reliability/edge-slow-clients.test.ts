/**
 * Reliability drill: slow clients cannot pin sockets. A gateway process gets 200 connections that
 * send their headers and then trickle a request body one byte at a time (the finding: one such
 * unauthenticated connection was still open after 330 s); every one must be closed by the body
 * deadline (server.body_timeout_ms: default 30 s in the full drill, 2 s in the short form) with a 408,
 * and /health must keep its latency meanwhile (p99 during vs before).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { demoConfig, ACME_KEY } from '../support/gateway.js';
import {
  freePort,
  startGatewayProcess,
  stopGatewayProcess,
  type GatewayProcess,
} from '../support/processes.js';
import { FULL, drillSize, recordDrill } from './support.js';

const CONNECTIONS = drillSize(50, 200);
/** The full drill runs on the defaults (30 s body deadline, 10 s headers). */
const BODY_TIMEOUT_MS = FULL ? 30_000 : 2_000;
const HEADERS_TIMEOUT_MS = FULL ? 10_000 : 1_000;
/** One byte this often: the attacker sent one every 20 s. */
const TRICKLE_MS = FULL ? 20_000 : 500;
/** Node checks deadlines every second; allow that plus scheduling on a busy machine. */
const SLACK_MS = 3_000;
const HEALTH_SAMPLES = drillSize(300, 1000);
const Q = FULL ? 0.99 : 0.95;
const Q_NAME = FULL ? 'p99' : 'p95';

interface SlowResult {
  status: number;
  closedAfterMs: number;
}

function slowBody(port: number, started: number): { done: Promise<SlowResult>; socket: Socket } {
  const s = connect(port, '127.0.0.1');
  let text = '';
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<SlowResult>((resolve) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearInterval(timer);
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        closedAfterMs: performance.now() - started,
      });
    });
    s.on('connect', () => {
      s.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ACME_KEY}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
      );
      timer = setInterval(() => {
        if (!s.destroyed) s.write(' ');
      }, TRICKLE_MS);
    });
  });
  return { done, socket: s };
}

async function healthLatencies(url: string, n: number): Promise<number[]> {
  const pool = new Pool(url, { connections: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await pool.request({ method: 'GET', path: '/health' });
      await r.body.text();
      assert.equal(r.statusCode, 200);
      out.push(performance.now() - t);
    }
  } finally {
    await pool.close();
  }
  return out;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

describe('reliability drill: slow-body connections are closed by the deadline', () => {
  let dir: string;
  let gw: GatewayProcess;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-slow-'));
    const cfg = demoConfig({
      server: {
        host: '127.0.0.1',
        port: 0,
        ...(FULL ? {} : { body_timeout_ms: BODY_TIMEOUT_MS, headers_timeout_ms: HEADERS_TIMEOUT_MS }),
      },
      logging: { level: 'warn' },
    });
    const file = join(dir, 'portico.yaml');
    await writeFile(file, stringify(cfg));
    gw = await startGatewayProcess(file, await freePort());
  });
  after(async () => {
    await stopGatewayProcess(gw);
    await rm(dir, { recursive: true, force: true });
  });

  it(`${CONNECTIONS} slow-body connections: all cut by the body deadline with a 408, /health ${Q_NAME} unchanged`, async () => {
    const port = Number(new URL(gw.url).port);
    const baseline = await healthLatencies(gw.url, HEALTH_SAMPLES);
    const started = performance.now();
    const slow = Array.from({ length: CONNECTIONS }, () => slowBody(port, started));
    try {
      // Let them all connect and start trickling, then measure /health while they are held.
      await new Promise((r) => setTimeout(r, Math.min(1000, BODY_TIMEOUT_MS / 2)));
      const during = await healthLatencies(gw.url, HEALTH_SAMPLES);
      const results = await Promise.all(slow.map((s) => s.done));
      const closedBy = BODY_TIMEOUT_MS + SLACK_MS;
      const late = results.filter((r) => r.closedAfterMs > closedBy).length;
      const early = results.filter((r) => r.closedAfterMs < BODY_TIMEOUT_MS - 100).length;
      const with408 = results.filter((r) => r.status === 408).length;
      const latest = Math.max(...results.map((r) => r.closedAfterMs));
      // The full drill (alone on the machine) bounds the p99; the quick form inside `npm test`,
      // which shares two cores with the other test files, bounds the p95 (300 samples: the p99 is
      // the third-slowest request, one scheduler hiccup of the loaded machine).
      const p99Before = quantile(baseline, Q);
      const p99During = quantile(during, Q);
      const p99Bound = Math.max(2 * p99Before, p99Before + 5);
      await recordDrill('edge-slow-clients', {
        title: `${CONNECTIONS} connections trickling a request body (one byte every ${TRICKLE_MS / 1000} s)`,
        guarantee: `a client that does not send its whole request within server.body_timeout_ms (${BODY_TIMEOUT_MS / 1000} s here) is answered 408 and closed; the gateway keeps serving others at the same latency`,
        figures: [
          {
            label: 'connections closed by the gateway',
            value: results.length,
            bound: `${CONNECTIONS}`,
            ok: results.length === CONNECTIONS,
          },
          {
            label: 'answered 408 request_timeout',
            value: with408,
            bound: `${CONNECTIONS}`,
            ok: with408 === CONNECTIONS,
          },
          {
            label: 'latest close after connect',
            value: Math.round(latest),
            unit: 'ms',
            bound: `<= ${closedBy} (deadline + Node's 1 s check + slack)`,
            ok: late === 0,
          },
          { label: 'closed before the deadline', value: early, bound: '0', ok: early === 0 },
          {
            label: '/health p50 before / during',
            value: `${round(quantile(baseline, 0.5))} / ${round(quantile(during, 0.5))}`,
            unit: 'ms',
          },
          {
            label: `/health ${Q_NAME} before / during`,
            value: `${round(p99Before)} / ${round(p99During)}`,
            unit: 'ms',
            bound: `during <= ${round(p99Bound)} (max(2x, +5 ms))`,
            ok: p99During <= p99Bound,
          },
        ],
        notes: [
          `${HEALTH_SAMPLES} sequential /health requests on one keep-alive connection before, and again while the slow connections were open.`,
        ],
      });
      assert.equal(results.length, CONNECTIONS);
      assert.equal(with408, CONNECTIONS, 'every slow connection got the 408');
      assert.equal(late, 0, `${late} connections outlived the deadline (latest ${Math.round(latest)} ms)`);
      assert.equal(early, 0, `${early} connections were cut before the deadline`);
      assert.ok(p99During <= p99Bound, `/health ${Q_NAME} ${p99During} ms during vs ${p99Before} ms before`);
    } finally {
      for (const s of slow) s.socket.destroy();
    }
  });
});
