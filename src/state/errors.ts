/**
 * Errors raised by the state layer. They carry no HTTP meaning; the gateway maps them
 * (conflict -> 409 `conflict`, not_found -> 404, unavailable -> 503).
 */
import type { BackendName } from './ports.js';

export class StateConflictError extends Error {
  override readonly name = 'StateConflictError';
}

/** syncFromConfig: config ids that are API tenants' (TenantStore.syncFromConfig). */
export function apiTenantsTaken(ids: readonly string[]): StateConflictError {
  return new StateConflictError(
    `config tenants ${ids.join(', ')} exist as tenants created through the admin API; a config entry cannot take one over`,
  );
}

export class StateNotFoundError extends Error {
  override readonly name = 'StateNotFoundError';
}

/** A backing store is unreachable and the configured mode is fail_closed (or the port has no open mode). */
export class StateUnavailableError extends Error {
  override readonly name = 'StateUnavailableError';
  readonly store: BackendName;
  constructor(store: BackendName, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.store = store;
  }
}

/** An input no store accepts (a NUL character in a string, a time out of range); the gateway answers 400. */
export class StateInvalidInputError extends Error {
  override readonly name = 'StateInvalidInputError';
  /** The field at fault, for the error's `param`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/**
 * The store refused the data it was given, not the request as such: retrying the same records can
 * never succeed, while the same call with other records can. StateInvalidInputError (the stores'
 * own check), a Postgres data exception or integrity violation (SQLSTATE classes 22 and 23: a NUL
 * in text, a number out of range, a NOT NULL column left empty), and SQLite's constraint, datatype
 * mismatch and too-big errors. Anything else — a connection refused or reset, a shutdown, a locked
 * or full file, a timeout — is the store failing, and the same records may go in later.
 */
export function isRefusedData(err: unknown): boolean {
  if (err instanceof StateInvalidInputError) return true;
  const code = (err as { code?: unknown } | null | undefined)?.code;
  if (typeof code !== 'string') return false;
  return /^2[23][0-9A-Z]{3}$/.test(code) || /^SQLITE_(?:CONSTRAINT|MISMATCH|TOOBIG)(?:_|$)/.test(code);
}
