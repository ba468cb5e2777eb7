/**
 * Errors raised by the state layer. They carry no HTTP meaning; the gateway maps them
 * (conflict -> 409 `conflict`, not_found -> 404, unavailable -> 503).
 */
import type { BackendName } from './ports.js';

export class StateConflictError extends Error {
  override readonly name = 'StateConflictError';
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
