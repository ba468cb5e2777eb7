/**
 * `portico backup --out FILE` and `portico restore FILE` for the embedded store (SQLite under
 * state.data_dir). The data directory comes from --data-dir, else from --config's `state.data_dir`
 * (embedded only), else `.portico-data`. Distributed deployments back up Postgres and Redis with
 * their own tools (docs/backup.md).
 */
import { loadConfigFile } from '../config/load.js';
import { backupStore, BackupError, restoreStore } from '../state/sqlite/backup.js';
import { UsageError, type CliIO } from './common.js';

export interface StoreDirOptions {
  dataDir?: string;
  config?: string;
}

const DEFAULT_DATA_DIR = '.portico-data';

async function dataDirFrom(values: StoreDirOptions, io: CliIO): Promise<string> {
  if (values.dataDir) return values.dataDir;
  if (values.config) {
    const { config } = await loadConfigFile(values.config, io.env);
    if (config.state.kind !== 'embedded')
      throw new UsageError(
        `${values.config} uses state.kind ${config.state.kind}: back up ${config.state.kind === 'distributed' ? 'Postgres (pg_dump) and Redis' : 'nothing (memory state does not persist)'}; see docs/backup.md`,
      );
    return config.state.data_dir;
  }
  return DEFAULT_DATA_DIR;
}

export async function backup(
  values: StoreDirOptions & { out: string; json?: boolean },
  io: CliIO,
): Promise<number> {
  const dir = await dataDirFrom(values, io);
  try {
    const r = await backupStore(dir, values.out);
    if (values.json) io.out(JSON.stringify({ data_dir: dir, ...r }));
    else {
      const s = r.summary;
      io.out(`backup written: ${r.file} (${r.bytes} bytes, sha256 ${r.sha256})`);
      io.out(
        `  from ${dir}: ${s.tenants} tenant(s), ${s.api_keys} key(s), ${s.ledger} ledger record(s), ${s.quota_usage} quota counter(s); schema v${s.schema_version}; integrity ok`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof BackupError) {
      io.err(`portico backup: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

export async function restore(
  file: string,
  values: StoreDirOptions & { force?: boolean },
  io: CliIO,
): Promise<number> {
  const dir = await dataDirFrom(values, io);
  try {
    const s = restoreStore(file, dir, { force: values.force === true });
    io.out(
      `restored ${file} into ${dir}: ${s.tenants} tenant(s), ${s.api_keys} key(s), ${s.ledger} ledger record(s); start the gateway to serve it`,
    );
    return 0;
  } catch (err) {
    if (err instanceof BackupError) {
      io.err(`portico restore: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

/** `portico backup ARGS...` / `portico restore ARGS...` in-process (tests). */
export async function runBackupCommand(argv: string[], io: CliIO): Promise<number> {
  const { runCli } = await import('./program.js');
  return runCli(['backup', ...argv], io);
}

export async function runRestoreCommand(argv: string[], io: CliIO): Promise<number> {
  const { runCli } = await import('./program.js');
  return runCli(['restore', ...argv], io);
}
