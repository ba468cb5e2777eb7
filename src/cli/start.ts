/** `portico start [--config FILE] [--host H] [--port N]`: run the gateway. */
import { resolve } from 'node:path';
import { Gateway } from '../app.js';
import { ConfigError, loadConfigFile, type LoadedConfig } from '../config/load.js';
import { ConfigWatcher } from '../config/watch.js';
import { buildHttpServer } from '../http/server.js';
import type { FastifyInstance } from 'fastify';
import { packageRoot, type CliIO } from './common.js';

export interface RunningGateway {
  gateway: Gateway;
  app: FastifyInstance;
  url: string;
  watcher: ConfigWatcher | undefined;
  stop: (drainMs?: number) => Promise<void>;
}

function overrideServer(
  loaded: LoadedConfig,
  host: string | undefined,
  port: number | undefined,
): LoadedConfig {
  if (host !== undefined) loaded.config.server.host = host;
  if (port !== undefined) loaded.config.server.port = port;
  return loaded;
}

/** Start a gateway from a config file; used by the CLI and by tests that need a real process-like server. */
export async function startGateway(opts: {
  configFile: string;
  env: Record<string, string | undefined>;
  host?: string;
  port?: number;
  watch?: boolean;
  defaultMetrics?: boolean;
  /** Hold start-up messages until gateway.releaseStartupLogs() (the CLI prints its banner first). */
  holdStartupLogs?: boolean;
}): Promise<RunningGateway> {
  const loaded = overrideServer(await loadConfigFile(opts.configFile, opts.env), opts.host, opts.port);
  const gateway = await Gateway.create(loaded, {
    defaultMetrics: opts.defaultMetrics ?? true,
    holdStartupLogs: opts.holdStartupLogs ?? false,
  });
  let app: FastifyInstance | undefined;
  let address: string;
  try {
    app = await buildHttpServer(gateway);
    address = await app.listen({ host: loaded.config.server.host, port: loaded.config.server.port });
  } catch (err) {
    // Not listening (EADDRINUSE, EACCES, ...): release what the gateway opened (Redis and Postgres
    // connections, timers), else they keep the process alive and a container never exits to be
    // restarted.
    await app?.close().catch(() => undefined);
    await gateway.close().catch(() => undefined);
    throw err;
  }
  gateway.markReady();
  const watcher =
    opts.watch === false
      ? undefined
      : new ConfigWatcher({
          file: opts.configFile,
          env: opts.env,
          initialFiles: loaded.files,
          apply: async (next) => {
            overrideServer(
              next,
              opts.host ?? loaded.config.server.host,
              opts.port ?? loaded.config.server.port,
            );
            const snap = await gateway.reloadConfig(next);
            gateway.metrics.configReloads.labels('ok').inc();
            gateway.logger.info(
              { version: snap.version, tenants: snap.tenants.size, models: snap.pools.size },
              'config reloaded',
            );
          },
          onError: (problems) => {
            gateway.metrics.configReloads.labels('rejected').inc();
            gateway.logger.error({ problems }, 'config change rejected; still serving the previous config');
          },
        });
  const stop = async (drainMs = gateway.snapshot.config.server.drain_timeout_ms): Promise<void> => {
    watcher?.close();
    gateway.startDrain();
    const timer = setTimeout(() => app.server.closeAllConnections?.(), drainMs);
    timer.unref();
    await app.close();
    clearTimeout(timer);
    await gateway.close();
  };
  return { gateway, app, url: address, watcher, stop };
}

/** What `portico start` prints once it listens: where, demo-key warnings, console, a first request. */
export function startBanner(gateway: Gateway, url: string, configFile: string): string[] {
  const config = gateway.snapshot.config;
  const lines = [`\nPortico is listening on ${url}  (config: ${configFile})`];
  // The hint uses a key written in plain text in this config (the demo's), else a placeholder.
  let tryKey: string | undefined;
  for (const t of config.tenants) {
    for (const k of t.api_keys) {
      if ('value' in k && k.value.startsWith('sk-demo-')) {
        tryKey ??= k.value;
        lines.push(
          `  WARNING: demo key for tenant ${t.id}: ${k.value} — public, for trying Portico only; never use it in production.`,
        );
      }
    }
  }
  if (config.admin.console)
    lines.push(
      `  Web console: ${url}/console/ (sign in with the admin token); admin API reference: ${url}/docs`,
    );
  if (gateway.generatedAdminToken)
    lines.push(
      `  Admin token (generated, set PORTICO_ADMIN_TOKEN to choose one): ${gateway.generatedAdminToken}`,
    );
  lines.push(
    `  Try: curl -s ${url}/ask -H 'Authorization: Bearer ${tryKey ?? '<tenant API key>'}' -H 'Content-Type: application/json' -d '{"question":"How should we build a real-time collaboration platform?"}'\n`,
  );
  return lines;
}

export async function runStart(
  opts: { config?: string; host?: string; port?: number },
  io: CliIO,
): Promise<void> {
  const configFile = resolve(opts.config ?? resolve(packageRoot(), 'examples/demo.yaml'));
  // Refuse a config that serves nothing (the full report: portico config check FILE).
  const loaded = await loadConfigFile(configFile, io.env);
  if (Object.keys(loaded.config.models).length === 0)
    throw new ConfigError(configFile, [
      {
        path: 'models',
        message: 'no models: define at least one model alias with a backend (see examples/demo.yaml)',
      },
    ]);
  const running = await startGateway({
    configFile,
    env: io.env,
    holdStartupLogs: true,
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
  });
  const { gateway, url } = running;
  const snap = gateway.snapshot;
  // The banner first, then what happened while starting (an engine's model, ...).
  for (const line of startBanner(gateway, url, configFile)) io.err(line);
  gateway.logger.info(
    { url, config: configFile, tenants: snap.tenants.size, models: [...snap.pools.keys()] },
    'portico listening',
  );
  gateway.releaseStartupLogs();

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal }, 'draining: no new connections; finishing requests in flight');
    running
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        gateway.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => void running.watcher?.reload());
}
