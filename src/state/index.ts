/** Public surface of the state layer: what the gateway, admin API and CLI import. */
export type * from './ports.js';
export {
  StateConflictError,
  StateInvalidInputError,
  StateNotFoundError,
  StateUnavailableError,
} from './errors.js';
export {
  createMemoryBackends,
  createStateBackends,
  defaultDistributedJournalDir,
  defaultJournalDir,
  replayJournal,
  type JournalReplay,
  type StateBackends,
  type StateConfig,
  type StateOptions,
} from './factory.js';
export { KeyResolver, TenantResolver, type KeyResolution, type BusCacheOptions } from './key-cache.js';
export {
  LedgerJournal,
  readSegments,
  type JournalEntry,
  type JournalQuota,
  type JournalLeftovers,
} from './ledger-journal.js';
export { LedgerWriter, type LedgerWriterOptions, type LedgerWriterStats } from './ledger-writer.js';
export { API_KEY_PREFIX, generateApiKey, hashApiKey, windowId, windowResetAt } from './util.js';
export { inflightKey, rpsKey, subjectName, tpmKey, type Subject } from './scopes.js';
