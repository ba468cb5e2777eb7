/**
 * One gateway process per embedded data directory: its quota decisions (and rate counters) live in
 * that process's memory, so a second gateway on the same directory would enforce every budget a
 * second time. The lock is an exclusive SQLite lock on `<data_dir>/gateway.lock` held for the
 * gateway's life: the OS drops it when the process dies (kill -9 included), so a crashed gateway
 * never blocks the next start, and a reused pid cannot fake it (unlike a pid file).
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';

export const GATEWAY_LOCK_FILE = 'gateway.lock';

/** Take the lock; returns its release. Throws, naming the directory, when another gateway holds it. */
export function lockDataDir(dataDir: string): () => void {
  const db = new Database(join(dataDir, GATEWAY_LOCK_FILE));
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    throw new Error(
      `state.data_dir ${dataDir} is in use by another Portico gateway (embedded state is one gateway process per data_dir: its quotas and rate limits are decided in that process's memory). Stop the other gateway, give this one its own data_dir, or run several replicas with state.kind: distributed.`,
      { cause: err },
    );
  }
  return () => {
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
  };
}
