/**
 * `portico backup --out FILE` and `portico restore FILE` for the embedded store (SQLite under
 * state.data_dir). The data directory comes from --data-dir, else from --config's `state.data_dir`
 * (embedded only), else `.portico-data`. Distributed deployments back up Postgres and Redis with
 * their own tools (docs/backup.md).
 */
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { backupStore, BackupError, restoreStore } from '../state/sqlite/backup.js';
import { UsageError, type CliIO } from './common.js';

const DEFAULT_DATA_DIR = '.portico-data';

async function dataDirFrom(
  values: { 'data-dir'?: string | undefined; config?: string | undefined },
  io: CliIO,
) {
  if (values['data-dir']) return values['data-dir'];
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

export async function runBackupCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string', short: 'o' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.out)
    throw new UsageError('usage: portico backup --out FILE [--data-dir DIR | --config FILE] [--json]');
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

export async function runRestoreCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      force: { type: 'boolean', default: false },
    },
  });
  const file = positionals[0];
  if (!file || positionals.length > 1)
    throw new UsageError('usage: portico restore FILE [--data-dir DIR | --config FILE] [--force]');
  const dir = await dataDirFrom(values, io);
  try {
    const s = restoreStore(file, dir, { force: values.force });
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
