/**
 * Inputs every state store refuses the same way, whatever the backend would do with them:
 * strings with a NUL character or an unpaired surrogate (Postgres rejects or alters them; SQLite
 * and memory would store them) and times outside what every store can represent. The gateway validates
 * these at the edge first; this is the stores' own guard, so a caller that skips the edge still gets
 * one typed error (StateInvalidInputError) from every implementation.
 */
import { isStorableText } from '../lib/storable-text.js';
import { StateInvalidInputError } from './errors.js';
import type { JsonValue, LedgerFilter, LedgerRecord, NewApiKey, NewTenant, TenantPatch } from './ports.js';

/** The largest ms epoch every store represents (9999-12-31T23:59:59.999Z; Postgres timestamptz goes further, JS Date to 8.64e15). */
export const MAX_TIME_MS = 253_402_300_799_999;
/** The smallest ms epoch a key's expiry may be (0001-01-01T00:00:00.000Z: Postgres has no year 0). */
export const MIN_EXPIRY_MS = -62_135_596_800_000;

/** An expiry every store can keep: years 1-9999 once its offset is applied (UTC). */
export function isStorableExpiry(v: string): boolean {
  const ms = Date.parse(v);
  return ms >= MIN_EXPIRY_MS && ms <= MAX_TIME_MS;
}

/** Text every store keeps as given (lib/storable-text.ts). */
export { isStorableText };

function checkText(field: string, v: string | null | undefined): void {
  if (typeof v === 'string' && !isStorableText(v))
    throw new StateInvalidInputError(
      field,
      `${field} must be valid Unicode text without a NUL character or an unpaired surrogate`,
    );
}

function checkJson(field: string, v: JsonValue | null | undefined): void {
  if (v === null || v === undefined) return;
  if (typeof v === 'string') checkText(field, v);
  else if (Array.isArray(v)) v.forEach((x, i) => checkJson(`${field}[${i}]`, x));
  else if (typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      checkText(`${field} key`, k);
      checkJson(`${field}.${k}`, x);
    }
}

export function checkId(field: string, id: string): void {
  checkText(field, id);
}

export function checkTenantInput(t: NewTenant | TenantPatch, id?: string): void {
  if (id !== undefined) checkText('id', id);
  if ('id' in t) checkText('id', t.id);
  checkText('display_name', t.display_name);
  checkText('company', t.company);
  checkText('industry', t.industry);
  checkText('system_prompt', t.system_prompt);
  checkText('priority', t.priority);
  t.allowed_models?.forEach((m, i) => checkText(`allowed_models[${i}]`, m));
  checkJson('prompt_policy', t.prompt_policy);
  checkJson('limits', t.limits);
  if ('limits_merge' in t) checkJson('limits_merge', t.limits_merge);
}

export function checkKeyInput(k: NewApiKey): void {
  checkText('tenant_id', k.tenant_id);
  checkText('id', k.id);
  checkText('label', k.label);
  checkText('expires_at', k.expires_at);
  if (typeof k.expires_at === 'string' && !isStorableExpiry(k.expires_at))
    throw new StateInvalidInputError(
      'expires_at',
      `expires_at must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z once its offset is applied, got ${JSON.stringify(k.expires_at.slice(0, 40))}`,
    );
  checkJson('limits', k.limits);
}

function checkTime(field: string, v: number | undefined): void {
  if (v === undefined) return;
  if (!Number.isSafeInteger(v) || v < 0 || v > MAX_TIME_MS)
    throw new StateInvalidInputError(
      field,
      `${field} must be a time between 1970 and 9999 in ms since the epoch, got ${v}`,
    );
}

export function checkLedgerFilter(f: LedgerFilter): void {
  checkText('tenant', f.tenant);
  checkText('model', f.model);
  checkText('key_id', f.key_id);
  checkTime('from', f.from);
  checkTime('to', f.to);
}

/** The largest value of the ledger's integer columns (Postgres `integer`). */
export const MAX_LEDGER_INT = 2_147_483_647;

function checkLedgerText(field: string, v: unknown, nullable: boolean): void {
  if (nullable && v === null) return;
  if (typeof v !== 'string')
    throw new StateInvalidInputError(field, `${field} must be a string${nullable ? ' or null' : ''}`);
  checkText(field, v);
}

function checkLedgerInt(field: string, v: unknown): void {
  // Stored rounded (sql-rows.ts ledgerParams).
  const n = typeof v === 'number' ? Math.round(v) : Number.NaN;
  if (!(n >= 0 && n <= MAX_LEDGER_INT))
    throw new StateInvalidInputError(
      field,
      `${field} must be a number from 0 to ${MAX_LEDGER_INT}, got ${String(v).slice(0, 40)}`,
    );
}

/**
 * One ledger record as every store can keep it: text fields without a NUL or an unpaired
 * surrogate, counts within the integer columns, a time in 1970-9999, a finite cost. A batch with
 * one such record is refused whole, before anything is written; the LedgerWriter then appends the
 * batch's records one by one and drops only the refused ones.
 */
export function checkLedgerRecord(r: LedgerRecord): void {
  checkLedgerText('id', r.id, false);
  checkLedgerText('tenant', r.tenant, false);
  checkLedgerText('key_id', r.key_id, true);
  checkLedgerText('model', r.model, false);
  checkLedgerText('backend', r.backend, true);
  checkLedgerText('request_id', r.request_id, false);
  checkTime('time', typeof r.time === 'number' ? Math.round(r.time) : Number.NaN);
  checkLedgerInt('tokens_in', r.tokens_in);
  checkLedgerInt('tokens_out', r.tokens_out);
  checkLedgerInt('latency_ms', r.latency_ms);
  checkLedgerInt('status', r.status);
  if (typeof r.cost_usd !== 'number' || !Number.isFinite(r.cost_usd))
    throw new StateInvalidInputError(
      'cost_usd',
      `cost_usd must be a finite number, got ${String(r.cost_usd)}`,
    );
  if (typeof r.estimated !== 'boolean' || typeof r.cache_hit !== 'boolean')
    throw new StateInvalidInputError(
      typeof r.estimated !== 'boolean' ? 'estimated' : 'cache_hit',
      'estimated and cache_hit must be booleans',
    );
}

export function checkLedgerRecords(records: readonly LedgerRecord[]): void {
  for (const r of records) checkLedgerRecord(r);
}

export function checkResponseKey(tenant: string, id: string): void {
  checkText('tenant', tenant);
  checkText('id', id);
}

export function checkStoredResponse(r: {
  tenant: string;
  id: string;
  createdAt: number;
  expiresAt: number;
}): void {
  checkResponseKey(r.tenant, r.id);
  checkTime('createdAt', r.createdAt);
  checkTime('expiresAt', r.expiresAt);
}
