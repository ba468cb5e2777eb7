/**
 * Backup and restore of the embedded store (the SQLite file under data_dir). Backups use SQLite's
 * online backup API (better-sqlite3 `db.backup()`), so they can be taken while a gateway is serving:
 * the copy is one consistent snapshot of every table at one moment. Restores are refused while a
 * gateway holds the store (its pid file names a live process) and, without `force`, when a store
 * already exists; the file is validated (SQLite header, integrity check, Portico tables, a schema
 * version this build knows) before anything is replaced, and the swap is a rename.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  openSync,
  readSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, SQLITE_FILE } from './db.js';

export const PID_FILE = 'portico.pid';
const TABLES = ['tenants', 'api_keys', 'ledger', 'quota_usage'] as const;

export interface StoreSummary {
  schema_version: number;
  tenants: number;
  api_keys: number;
  ledger: number;
  quota_usage: number;
}

export interface BackupResult {
  file: string;
  bytes: number;
  sha256: string;
  summary: StoreSummary;
}

export class BackupError extends Error {
  override name = 'BackupError';
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Validates a backup (or store) file and returns what it holds; throws BackupError with the reason. */
export function inspectStoreFile(file: string): StoreSummary {
  if (!existsSync(file)) throw new BackupError(`${file}: no such file`);
  const head = Buffer.alloc(16);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') !== 'SQLite format 3\0')
    throw new BackupError(`${file}: not a SQLite database (bad header)`);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new BackupError(`${file}: integrity check failed: ${String(check)}`);
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version < 1 || version > MIGRATIONS.length)
      throw new BackupError(
        `${file}: schema version ${version} is not one this build knows (1..${MIGRATIONS.length}); restore it with the Portico version that wrote it`,
      );
    const present = new Set(
      (
        db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as Array<{ name: string }>
      ).map((r) => r.name),
    );
    for (const t of TABLES)
      if (!present.has(t)) throw new BackupError(`${file}: not a Portico store (table ${t} missing)`);
    const count = (t: string): number =>
      (db!.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
    return {
      schema_version: version,
      tenants: count('tenants'),
      api_keys: count('api_keys'),
      ledger: count('ledger'),
      quota_usage: count('quota_usage'),
    };
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(
      `${file}: unreadable as a Portico store: ${err instanceof Error ? err.message : String(err)}`,
    );
  } finally {
    db?.close();
  }
}

/** Online backup of `<dataDir>/portico.db` into `outFile` (written atomically, then verified). */
export async function backupStore(dataDir: string, outFile: string): Promise<BackupResult> {
  const src = join(dataDir, SQLITE_FILE);
  if (!existsSync(src))
    throw new BackupError(`no embedded store at ${src} (check --data-dir or the config's state.data_dir)`);
  mkdirSync(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.partial-${process.pid}`;
  const db = new Database(src, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(tmp);
  } finally {
    db.close();
  }
  let summary: StoreSummary;
  try {
    summary = inspectStoreFile(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, outFile);
  return { file: outFile, bytes: statSync(outFile).size, sha256: sha256File(outFile), summary };
}

/** The pid of a live gateway holding the store, if any. */
export function storeHolder(dataDir: string): number | undefined {
  const f = join(dataDir, PID_FILE);
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: alive but someone else's process.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** Marks the store as held by this process (removed by releaseStore). */
export function holdStore(dataDir: string): void {
  writeFileSync(join(dataDir, PID_FILE), `${process.pid}\n`);
}

export function releaseStore(dataDir: string): void {
  const f = join(dataDir, PID_FILE);
  try {
    if (readFileSync(f, 'utf8').trim() === String(process.pid)) rmSync(f, { force: true });
  } catch {
    // already gone
  }
}

/** Replace the store under dataDir with a validated backup file. */
export function restoreStore(file: string, dataDir: string, opts: { force?: boolean } = {}): StoreSummary {
  const summary = inspectStoreFile(file);
  const holder = storeHolder(dataDir);
  if (holder !== undefined)
    throw new BackupError(
      `a gateway (pid ${holder}) is using the store in ${dataDir}; stop it before restoring (a running gateway would keep writing to the old file)`,
    );
  const target = join(dataDir, SQLITE_FILE);
  if (existsSync(target) && !opts.force)
    throw new BackupError(`${target} exists; pass --force to replace it (take a backup of it first)`);
  mkdirSync(dataDir, { recursive: true });
  const tmp = `${target}.restore-${process.pid}`;
  copyFileSync(file, tmp);
  // A WAL or shared-memory file of the old database must not be replayed onto the restored one.
  for (const suffix of ['-wal', '-shm']) rmSync(target + suffix, { force: true });
  renameSync(tmp, target);
  return summary;
}
