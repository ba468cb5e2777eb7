/**
 * Test support: start real servers on loopback (port 0) — a gateway built from a config object,
 * a simulator over HTTP — and close them afterwards.
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { FastifyInstance } from 'fastify';
import { Gateway } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { buildHttpServer } from '../../src/http/server.js';
import { buildSimServer, type ReceivedRequest, type SimServerOptions } from '../../src/sim/server.js';
import type { Simulator } from '../../src/sim/simulator.js';
import { startGateway, type RunningGateway } from '../../src/cli/start.js';
import { createLogger } from '../../src/telemetry/logger.js';

export const ACME_KEY = 'sk-test-acme-corp';
export const CLOSED_KEY = 'sk-test-closed-ai';
export const ACME_PROMPT = 'You are ACME design-first: architecture and UX before code.';
export const CLOSED_PROMPT = 'You are Closed AI code-first: working code and tests first.';

/** Two tenants sharing model `default` on an in-process echo simulator. Override any part. */
export function demoConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0 },
    logging: { level: 'silent' },
    admin: { token: 'test-admin-token' },
    state: { kind: 'memory' },
    tenants: [
      {
        id: 'acme-corp',
        display_name: 'ACME Corp',
        company: 'ACME Corporation',
        system_prompt: ACME_PROMPT,
        allowed_models: ['default'],
        api_keys: [{ value: ACME_KEY }],
      },
      {
        id: 'closed-ai',
        display_name: 'Closed AI',
        company: 'Closed AI Inc.',
        system_prompt: CLOSED_PROMPT,
        allowed_models: ['default'],
        api_keys: [{ value: CLOSED_KEY }],
      },
    ],
    models: { default: { backends: [{ id: 'sim-echo', provider: 'sim', sim: { mode: 'echo' } }] } },
    ...overrides,
  };
}

export interface TestGateway {
  url: string;
  baseURL: string;
  gateway: Gateway;
  app: FastifyInstance;
  close: () => Promise<void>;
}

/** Build a gateway from a config object and listen on 127.0.0.1:0. */
export async function startTestGateway(raw: Record<string, unknown> = demoConfig()): Promise<TestGateway> {
  const loaded = await buildConfig(raw, { env: {} });
  const gateway = await Gateway.create(loaded, { defaultMetrics: false, logger: createLogger('silent') });
  const app = await buildHttpServer(gateway);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  gateway.markReady();
  return {
    url,
    baseURL: `${url}/v1`,
    gateway,
    app,
    close: async () => {
      // Tests end abruptly: do not wait for keep-alive or abandoned connections (drain has its own drill).
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
      await gateway.close();
    },
  };
}

export interface TestSim {
  received: ReceivedRequest[];
  url: string;
  baseURL: string;
  sim: Simulator;
  app: FastifyInstance;
  close: () => Promise<void>;
}

export async function startTestSim(opts: SimServerOptions = {}): Promise<TestSim> {
  const { app, sim, received } = buildSimServer({ recordRequests: 100, ...opts });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, baseURL: `${url}/v1`, sim, app, received, close: () => app.close() };
}

/** Write a YAML config (and extra files) into a temp dir and start a watching gateway from it. */
export async function startGatewayFromFile(
  raw: Record<string, unknown>,
  files: Record<string, string> = {},
): Promise<RunningGateway & { dir: string; file: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'portico-test-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const file = join(dir, 'portico.yaml');
  await writeFile(file, stringify(raw));
  const running = await startGateway({ configFile: file, env: {}, defaultMetrics: false });
  return {
    ...running,
    dir,
    file,
    cleanup: async () => {
      await running.stop(1_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
