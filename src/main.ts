#!/usr/bin/env node
/**
 * The `portico` command. Commands are imported on demand so a small command does not load the gateway.
 * The only module that reads process.argv and process.env; each command
 * lives in src/cli/ and gets its environment passed in.
 */
import { UsageError, type CliIO } from './cli/common.js';
import { AdminApiError } from './cli/admin-client.js';
import { VERSION } from './version.js';

const HELP = `portico ${VERSION} — multi-tenant LLM gateway

Usage:
  portico start [--config FILE] [--host H] [--port N]   run the gateway (default config: examples/demo.yaml)
  portico sim [--port N] [--mode lorem|echo] [--ttft-ms N] [--itl-ms N] [--output-tokens N]
                                                         run the backend simulator (OpenAI API)
  portico engine --model PATH|hf:owner/repo:QUANT [--port N] [--threads N] [--sequences N] [--context N] [--gpu auto|off]
                                                         run the built-in engine (llama.cpp; seed + OpenAI API)
  portico config check FILE                              validate a config file, print every problem
  portico tenants add ID [--name N] [--prompt TEXT|--prompt-file F] [--models a,b] [--rps N] [--daily-tokens N] ...
  portico tenants list
  portico keys create --tenant ID [--label L] [--expires ISO] | keys list [--tenant ID] | keys revoke KEY_ID
  portico usage report --tenant ID [--month 2026-11] [--group-by day|month|model|key] [--format table|csv|json]
      (admin commands use a running gateway: --url URL (default http://127.0.0.1:8080), --admin-token T or PORTICO_ADMIN_TOKEN)
  portico promptset generate --seed N --scenario S --dataset D --out DIR
                                                         reproducible promptset (jsonl + manifest)
  portico bench run --promptset FILE --target URL --key KEY [--model M | --team T] --concurrency N
                    [--duration S | --count N] --run-id ID   load harness with pass/fail checks
  portico bench compare RUN_A.json RUN_B.json            latency and pass-rate deltas with significance
  portico drill slow-startup|quota-rejection|upstream-timeout|backend-down|all [--target URL] [--sim-a URL] [--sim-b URL]
                                                         failure drills against a gateway with simulator backends
  portico backup --out FILE [--data-dir DIR | --config FILE]
                                                         online backup of the embedded store (SQLite)
  portico restore FILE [--data-dir DIR | --config FILE] [--force]
                                                         restore it (the gateway must be stopped)
  portico --version | --help
`;

async function main(argv: string[]): Promise<number> {
  const io: CliIO = {
    env: process.env,
    out: (l) => process.stdout.write(l + '\n'),
    err: (l) => process.stderr.write(l + '\n'),
  };
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
      await (await import('./cli/start.js')).runStartCommand(rest, io);
      return -1; // keeps running
    case 'sim':
      await (await import('./cli/sim.js')).runSimCommand(rest, io);
      return -1;
    case 'engine':
      await (await import('./cli/engine.js')).runEngineCommand(rest, io);
      return -1;
    case 'config':
      return (await import('./cli/config.js')).runConfigCommand(rest, io);
    case 'tenants':
      return (await import('./cli/tenants.js')).runTenantsCommand(rest, io);
    case 'keys':
      return (await import('./cli/tenants.js')).runKeysCommand(rest, io);
    case 'usage':
      return (await import('./cli/tenants.js')).runUsageCommand(rest, io);
    case 'promptset':
      await (await import('./cli/promptset.js')).runPromptsetCommand(rest);
      return 0;
    case 'bench':
      await (await import('./cli/bench.js')).runBenchCommand(rest);
      return 0;
    case 'drill':
      return (await import('./cli/drill.js')).runDrillCommand(rest, io);
    case 'backup':
      return (await import('./cli/backup.js')).runBackupCommand(rest, io);
    case 'restore':
      return (await import('./cli/backup.js')).runRestoreCommand(rest, io);
    case '--version':
    case '-v':
      io.out(VERSION);
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      io.out(HELP);
      return 0;
    default:
      throw new UsageError(`unknown command "${cmd}"\n\n${HELP}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      (err instanceof Error &&
        'code' in err &&
        String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`portico: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`portico: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = err instanceof AdminApiError ? 3 : 1;
  },
);
