#!/usr/bin/env node
/**
 * The `portico` command. The command tree (arguments, options, help) is declared in
 * src/cli/program.ts; each command's implementation lives in src/cli/ and is imported on demand so
 * a small command does not load the gateway. The only module that reads process.argv and
 * process.env. Exit codes: 0 ok, 1 failed check/run, 2 usage error, 3 gateway unreachable or
 * admin API refused.
 */
import { UsageError, stdio } from './cli/common.js';
import { AdminApiError } from './cli/admin-client.js';
import { KEEP_RUNNING, runCli } from './cli/program.js';

// The reader of our output has gone (`portico --help | head -1`): stop quietly, as a Unix tool
// stopped by SIGPIPE does, instead of a stack trace for the unhandled EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

runCli(process.argv.slice(2), stdio(process.env)).then(
  (code) => {
    if (code !== KEEP_RUNNING) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`portico: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`portico: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = err instanceof AdminApiError ? 3 : 1;
  },
);
