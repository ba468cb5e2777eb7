/**
 * Backup and restore of the embedded store: a backup taken under load (requests writing ledger
 * rows) is one consistent snapshot that restores to a store whose tenants and keys are identical
 * to the source and whose ledger is exactly a prefix-consistent subset of it (every row present is
 * byte-identical to the source's); a backup taken after the gateway stopped restores to a store
 * identical to the source in every table. A restored store serves (its keys work). Restores are
 * refused while a gateway holds the store, onto an existing store without --force, and for files
 * that are not Portico stores.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runBackupCommand, runRestoreCommand } from '../../src/cli/backup.js';
import type { CliIO } from '../../src/cli/common.js';
import { startGateway, type RunningGateway } from '../../src/cli/start.js';
import { stringify } from 'yaml';

const ADMIN = 'backup-admin-token';

function captureIO(): CliIO & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { env: {}, out: (l) => lines.push(l), err: (l) => errors.push(l), lines, errors };
}

function rows(file: string, table: string, key: string): Map<string, string> {
  const db = new Database(file, { readonly: true });
  try {
    const out = new Map<string, string>();
    for (const r of db.prepare(`SELECT * FROM ${table}`).all() as Array<Record<string, unknown>>)
      out.set(
        key
          .split(',')
          .map((k) => String(r[k]))
          .join('|'),
        JSON.stringify(r),
      );
    return out;
  } finally {
    db.close();
  }
}

async function admin(
  url: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

async function chat(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'default',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'log me' }],
    }),
  });
  await res.text();
  return res.status;
}

describe('backup and restore of the embedded store', () => {
  let dir: string;
  let dataDir: string;
  let configFile: string;
  let gw: RunningGateway | undefined;
  const keys: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-backup-'));
    dataDir = join(dir, 'data');
    configFile = join(dir, 'portico.yaml');
    const config = (data: string): string =>
      stringify({
        server: { host: '127.0.0.1', port: 0 },
        logging: { level: 'silent' },
        admin: { token: ADMIN },
        state: { kind: 'embedded', data_dir: data },
        tenants: [{ id: 'declared', allowed_models: ['default'], api_keys: [{ value: 'sk-declared' }] }],
        models: { default: { backends: [{ provider: 'sim', sim: { mode: 'echo' } }] } },
      });
    await writeFile(configFile, config(dataDir));
    await writeFile(join(dir, 'restored-a.yaml'), config(join(dir, 'restored-a')));
    gw = await startGateway({ configFile, env: {}, watch: false });
    for (const id of ['t1', 't2', 't3']) {
      await admin(gw.url, 'POST', '/admin/tenants', { id, allowed_models: ['default'] });
      keys.push((await admin(gw.url, 'POST', `/admin/tenants/${id}/keys`, { label: 'load' })).key as string);
    }
  });

  after(async () => {
    await gw?.stop(1_000);
    await rm(dir, { recursive: true, force: true });
  });

  it('a backup under load is a consistent snapshot; after a stop, restore is identical', async () => {
    assert.ok(gw);
    const url = gw.url;
    // Load: 4 workers, bounded by count and time, writing ledger rows while the backup runs.
    let sent = 0;
    const deadline = Date.now() + 3_000;
    const worker = async (w: number): Promise<void> => {
      while (sent < 600 && Date.now() < deadline) {
        sent++;
        assert.equal(await chat(url, keys[w % keys.length] as string), 200);
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    await new Promise((r) => setTimeout(r, 300));
    const fileA = join(dir, 'under-load.db');
    const io = captureIO();
    assert.equal(
      await runBackupCommand(['--out', fileA, '--config', configFile], io),
      0,
      io.errors.join('\n'),
    );
    assert.match(io.lines.join('\n'), /integrity ok/);

    // While the gateway holds the store, restoring onto it is refused.
    const refused = captureIO();
    assert.equal(await runRestoreCommand([fileA, '--data-dir', dataDir, '--force'], refused), 1);
    assert.match(refused.errors.join('\n'), /is using the store/);

    await load;
    await gw.stop(2_000); // flushes the ledger
    gw = undefined;
    const source = join(dataDir, 'portico.db');

    // Under load: tenants and keys identical, ledger rows a subset, each identical to the source's.
    const a = join(dir, 'restored-a');
    assert.equal(await runRestoreCommand([fileA, '--data-dir', a], captureIO()), 0);
    const restoredA = join(a, 'portico.db');
    assert.deepEqual(rows(restoredA, 'tenants', 'id'), rows(source, 'tenants', 'id'));
    assert.deepEqual(rows(restoredA, 'api_keys', 'id'), rows(source, 'api_keys', 'id'));
    const ledgerA = rows(restoredA, 'ledger', 'id');
    const ledgerSrc = rows(source, 'ledger', 'id');
    assert.ok(ledgerA.size > 0, 'the backup caught some of the load');
    assert.ok(ledgerSrc.size >= ledgerA.size);
    for (const [id, row] of ledgerA) assert.equal(ledgerSrc.get(id), row, `ledger row ${id}`);

    // After the stop: every table identical.
    const fileB = join(dir, 'after-stop.db');
    assert.equal(await runBackupCommand(['--out', fileB, '--data-dir', dataDir], captureIO()), 0);
    const b = join(dir, 'restored-b');
    assert.equal(await runRestoreCommand([fileB, '--data-dir', b], captureIO()), 0);
    for (const [table, key] of [
      ['tenants', 'id'],
      ['api_keys', 'id'],
      ['ledger', 'id'],
      ['quota_usage', 'tenant,scope,window_id'],
    ] as const) {
      assert.deepEqual(rows(join(b, 'portico.db'), table, key), rows(source, table, key), table);
    }
    assert.equal(ledgerSrc.size, sent, 'one ledger record per request');

    // The restored (under-load) store serves: an API-created key works.
    const restored = await startGateway({ configFile: join(dir, 'restored-a.yaml'), env: {}, watch: false });
    try {
      assert.equal(await chat(restored.url, keys[0] as string), 200);
      const usage = await admin(restored.url, 'GET', '/admin/usage?tenant=t1&group_by=model');
      const reqs = (usage.data as Array<{ requests: number }>)[0]?.requests ?? 0;
      const inBackup = [...ledgerA.values()].filter(
        (r) => (JSON.parse(r) as { tenant: string }).tenant === 't1',
      );
      assert.equal(reqs, inBackup.length + 1);
    } finally {
      await restored.stop(1_000);
    }
  });

  it('restore refuses an existing store without --force, and files that are not Portico stores', async () => {
    const target = join(dir, 'restored-b');
    const existing = captureIO();
    assert.equal(await runRestoreCommand([join(dir, 'after-stop.db'), '--data-dir', target], existing), 1);
    assert.match(existing.errors.join('\n'), /--force/);
    assert.equal(
      await runRestoreCommand([join(dir, 'after-stop.db'), '--data-dir', target, '--force'], captureIO()),
      0,
    );

    const junk = join(dir, 'junk.db');
    await writeFile(junk, 'this is not a database at all, just text');
    const bad = captureIO();
    assert.equal(await runRestoreCommand([junk, '--data-dir', join(dir, 'x')], bad), 1);
    assert.match(bad.errors.join('\n'), /not a SQLite database/);

    const other = join(dir, 'other.db');
    const db = new Database(other);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY)');
    db.pragma('user_version = 1');
    db.close();
    const foreign = captureIO();
    assert.equal(await runRestoreCommand([other, '--data-dir', join(dir, 'y')], foreign), 1);
    assert.match(foreign.errors.join('\n'), /not a Portico store/);
  });
});
