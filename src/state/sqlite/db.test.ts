/**
 * The embedded database's connection settings: SQLite's page cache is SQLite's own 2 MiB default
 * (better-sqlite3 builds SQLite with 16 MiB, which the ledger's inserts fill and keep resident),
 * or what `state.sqlite_cache_mb` asks for.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError } from '../../config/load.js';
import { DEFAULT_SQLITE_CACHE_MB, openSqlite } from './db.js';

function cacheKib(dataDir: string, mb?: number): number {
  const db = openSqlite(dataDir, mb);
  try {
    // Negative: KiB (a positive value would be a number of pages).
    return -Number(db.pragma('cache_size', { simple: true }));
  } finally {
    db.close();
  }
}

describe('openSqlite: page cache', () => {
  it('is 2 MiB by default, on a file and in memory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-sqlite-cache-'));
    try {
      assert.equal(DEFAULT_SQLITE_CACHE_MB, 2);
      assert.equal(cacheKib(dir), 2048);
      assert.equal(cacheKib(':memory:'), 2048);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes the size asked for, in MiB', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-sqlite-cache-'));
    try {
      assert.equal(cacheKib(dir, 64), 64 * 1024);
      assert.equal(cacheKib(dir, 1), 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('state.sqlite_cache_mb defaults to 2 and refuses sizes outside 1..1024 by path', async () => {
    const base = { tenants: [], models: {} };
    const loaded = await buildConfig({ ...base, state: { kind: 'embedded', data_dir: 'x' } });
    assert.equal(loaded.config.state.kind === 'embedded' && loaded.config.state.sqlite_cache_mb, 2);
    const implicit = await buildConfig(base);
    assert.equal(implicit.config.state.kind === 'embedded' && implicit.config.state.sqlite_cache_mb, 2);
    for (const bad of [0, 2048, 1.5]) {
      await assert.rejects(
        buildConfig({ ...base, state: { kind: 'embedded', sqlite_cache_mb: bad } }),
        (err: unknown) =>
          err instanceof ConfigError && err.problems.some((p) => p.path === 'state.sqlite_cache_mb'),
      );
    }
  });
});
