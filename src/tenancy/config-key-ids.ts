/**
 * Start-up migration of config key quota usage from positional ids to derived ids.
 *
 * Versions before this one named a config key without `id:` by its place in the list
 * (`{tenant}-cfg-{index}`); now it is named by its digest (config/key-ids.ts). Of the state kept
 * per key id, only quota usage decides anything: rate-limit counters and in-flight slots are
 * transient (they refill or expire within seconds to a minute), and the ledger and audit log are
 * history. So at start, for every config key without `id:`, the usage of the current day and month
 * windows under its positional id is added to its derived id and removed from the positional one
 * (QuotaStore.moveUsage: one transaction in SQLite, one script in Redis). Nothing is counted twice
 * (what moves leaves the old scope in the same step), a second start moves nothing, and a store that
 * an older version wrote to again (a rollback) is folded in at the next start. Ledger rows keep the
 * positional ids they were recorded with (docs/tenancy.md, "Config key ids").
 *
 * The positional id is read from the config as it is at this start: upgrade with the key list the
 * previous version ran with, and remove or reorder keys afterwards (a reload or a later start).
 * A positional id that is also a current key id in the tenant (some key's explicit `id:`) belongs to
 * that key and is left alone.
 */
import { configKeyDigest, configKeyId, positionalConfigKeyId } from '../config/key-ids.js';
import type { PorticoConfig } from '../config/schema.js';
import { subjectName, type QuotaMoved, type QuotaStore } from '../state/index.js';

export interface KeyIdMove {
  tenant: string;
  from: string;
  to: string;
  moved: QuotaMoved[];
}

export interface KeyIdMigration {
  /** Keys whose usage moved (those with nothing to move are left out). */
  moved: KeyIdMove[];
  /** Keys whose move failed (the store was unavailable); their usage stays until the next start. */
  failed: Array<{ tenant: string; from: string; to: string; error: string }>;
}

/** Move each config key's quota usage from its positional id to its derived id (see above). */
export async function migrateConfigKeyIds(
  quotas: QuotaStore,
  tenants: PorticoConfig['tenants'],
  now?: number,
): Promise<KeyIdMigration> {
  const out: KeyIdMigration = { moved: [], failed: [] };
  for (const t of tenants) {
    const ids = t.api_keys.map((k) => configKeyId(t.id, k.id, configKeyDigest(k)));
    const current = new Set(ids);
    for (const [i, k] of t.api_keys.entries()) {
      if (k.id !== undefined) continue;
      const from = positionalConfigKeyId(t.id, i);
      const to = ids[i];
      if (to === undefined || current.has(from)) continue;
      try {
        const moved = await quotas.moveUsage(
          t.id,
          subjectName({ kind: 'key', id: from }),
          subjectName({ kind: 'key', id: to }),
          now,
        );
        if (moved.length > 0) out.moved.push({ tenant: t.id, from, to, moved });
      } catch (err) {
        out.failed.push({ tenant: t.id, from, to, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return out;
}
