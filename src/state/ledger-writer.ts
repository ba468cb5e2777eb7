/**
 * Batches ledger appends off the request path. write() is synchronous and O(1); a timer (or a
 * full batch) flushes to the LedgerStore. A failed flush keeps the records and retries with
 * backoff; appends are idempotent by request id, so a retry after an ambiguous failure cannot
 * duplicate. The buffer is bounded: past `maxBuffer` records are dropped and counted (that is a
 * store outage long enough to threaten memory). close() flushes everything that is left.
 *
 * With a journal (ledger-journal.ts) each write() is first appended synchronously to a local file,
 * so a crash loses nothing the client was answered for: the next start replays the file. A record
 * is confirmed in the journal once the store accepted it; a record that carries a quota settle
 * also waits for quotaSettled(). A record dropped from the buffer (full during a long store outage)
 * stays in the journal: once the store has taken everything buffered, the writer reads the dropped
 * records back from their segments, oldest first, and appends them (with the segment's records
 * that were written already: appends are idempotent), so the ledger is whole again without a
 * restart and the segments can go. Without a journal a dropped record is lost (onLedgerLost).
 *
 * A batch the store refuses for its data (isRefusedData: a NUL in a key id on Postgres, a count out
 * of range) is appended again one record at a time: the records the store takes are written, the
 * ones it refuses are dropped — counted (refused, dropped, onLedgerLost), logged once each with
 * their id, and confirmed in the journal so that neither this process nor a replay tries them
 * again. One bad record used to fail its whole batch for ever, and with it every record behind it.
 * A store failure during that pass (not about the data) stops it; the rest stays buffered.
 */
import { isRefusedData } from './errors.js';
import type { JournalQuota, JournalSegment, LedgerJournal } from './ledger-journal.js';
import type { BackendName, LedgerRecord, LedgerStore, StateHooks, StateLogger } from './ports.js';

export interface LedgerWriterOptions {
  /** Flush at least this often. Default 250 ms. */
  flushIntervalMs?: number;
  /** Records per append (and the size that triggers an early flush). Default 500. */
  maxBatch?: number;
  /** Hard cap on buffered records; beyond it writes are dropped and counted. Default 100 000. */
  maxBuffer?: number;
  /** write() returns false at or above this many buffered records (slow down). Default maxBuffer / 2. */
  highWater?: number;
  /** First retry delay after a failed flush; doubles up to retryMaxMs. Default 200 ms. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  logger?: StateLogger;
  hooks?: StateHooks;
  /** Backend behind the store (for error events). */
  store?: BackendName;
  /** Crash journal: every record is written to it synchronously before it is buffered. */
  journal?: LedgerJournal;
}

export interface LedgerWriterStats {
  buffered: number;
  /** Records the store accepted as new. */
  written: number;
  /** Records the store already had (retried appends). */
  duplicates: number;
  /** Records dropped: the buffer was full or the writer closed, or the store refused them (refused). */
  dropped: number;
  /** Records the store refused for their data (in `dropped` too): never written, never retried. */
  refused: number;
  /** Dropped records read back from the journal and appended once the store recovered. */
  recovered: number;
  flushes: number;
  failedFlushes: number;
}

function okNumber(n: unknown): boolean {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0;
}

/** Every request's record passes here: plain checks, no per-call array or closure. */
function isValidRecord(r: LedgerRecord): boolean {
  return (
    typeof r.id === 'string' &&
    r.id.length > 0 &&
    typeof r.tenant === 'string' &&
    typeof r.model === 'string' &&
    okNumber(r.time) &&
    okNumber(r.tokens_in) &&
    okNumber(r.tokens_out) &&
    okNumber(r.cost_usd) &&
    okNumber(r.latency_ms) &&
    okNumber(r.status)
  );
}

export class LedgerWriter {
  readonly #store: LedgerStore;
  readonly #o: Required<Omit<LedgerWriterOptions, 'logger' | 'hooks' | 'store' | 'journal'>>;
  readonly #opts: LedgerWriterOptions;
  #buf: LedgerRecord[] = [];
  /**
   * Journal segment of each buffered record (same order as #buf), confirmed once it is written;
   * null: in the journal but owes it nothing (read back with a dropped group); undefined: not in
   * the journal (its write failed). Empty without a journal.
   */
  #segs: Array<JournalSegment | null | undefined> = [];
  /** Records whose quota commit is still to be confirmed (request id -> segment). */
  readonly #awaitingQuota = new Map<string, { seg: JournalSegment; q: JournalQuota }>();
  /** Segments holding records dropped from a full buffer, and how many each (oldest first). */
  readonly #droppedIn = new Map<JournalSegment, number>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;
  #backoffMs = 0;
  #retryAt = 0;
  #soon = false;
  readonly #stats: LedgerWriterStats = {
    buffered: 0,
    written: 0,
    duplicates: 0,
    dropped: 0,
    refused: 0,
    recovered: 0,
    flushes: 0,
    failedFlushes: 0,
  };

  constructor(store: LedgerStore, opts: LedgerWriterOptions = {}) {
    this.#store = store;
    this.#opts = opts;
    const maxBuffer = opts.maxBuffer ?? 100_000;
    this.#o = {
      flushIntervalMs: opts.flushIntervalMs ?? 250,
      maxBatch: opts.maxBatch ?? 500,
      maxBuffer,
      highWater: opts.highWater ?? Math.floor(maxBuffer / 2),
      retryBaseMs: opts.retryBaseMs ?? 200,
      retryMaxMs: opts.retryMaxMs ?? 5000,
    };
    this.#timer = setInterval(() => {
      opts.journal?.tick();
      void this.flush().catch(() => undefined);
    }, this.#o.flushIntervalMs);
    this.#timer.unref();
  }

  /**
   * Queue a record (journaled first when there is a journal). `quota` is the quota commit this
   * request's settle makes: journaled with the record so a replay can redo it; call quotaSettled()
   * once that commit is confirmed. False means "buffer above high water" (or dropped): shed load.
   * `deferJournal`: the journal line is written with the others of this event-loop turn (one
   * write); the caller holds the response back until afterJournal() calls back.
   */
  write(r: LedgerRecord, quota?: JournalQuota, deferJournal = false): boolean {
    if (!isValidRecord(r)) {
      // A record the store would reject forever must not block the queue behind it.
      this.#stats.dropped++;
      this.#opts.hooks?.onLedgerLost?.(1);
      this.#opts.logger?.error({ id: r.id, tenant: r.tenant }, 'invalid ledger record dropped');
      return false;
    }
    const journal = this.#opts.journal;
    let seg: JournalSegment | undefined;
    if (journal && !this.#closed) {
      try {
        seg = journal.append(quota ? { r, q: quota } : { r }, deferJournal);
        if (quota) this.#awaitingQuota.set(r.id, { seg, q: quota });
      } catch (err) {
        this.#opts.logger?.error({ err, id: r.id }, 'ledger journal write failed');
      }
    }
    if (this.#closed || this.#buf.length >= this.#o.maxBuffer) {
      // Journaled records are not lost: read back once the store recovers (#recoverDropped), or
      // replayed at the next start.
      this.#stats.dropped++;
      if (seg && !this.#closed) this.#droppedIn.set(seg, (this.#droppedIn.get(seg) ?? 0) + 1);
      else if (!seg) this.#opts.hooks?.onLedgerLost?.(1);
      if (this.#stats.dropped === 1 || this.#stats.dropped % 1000 === 0) {
        this.#opts.logger?.error(
          { dropped: this.#stats.dropped, closed: this.#closed, store: this.#opts.store },
          'ledger buffer full or closed; usage record dropped',
        );
      }
      return false;
    }
    this.#buf.push(r);
    if (journal) this.#segs.push(seg);
    if (this.#buf.length >= this.#o.maxBatch && !this.#soon) {
      this.#soon = true;
      setImmediate(() => {
        this.#soon = false;
        void this.flush().catch(() => undefined);
      });
    }
    return this.#buf.length < this.#o.highWater;
  }

  /** `cb` runs once every record written so far is in the journal (at once without a journal). */
  afterJournal(cb: () => void): void {
    const journal = this.#opts.journal;
    if (journal && !this.#closed) journal.whenWritten(cb);
    else cb();
  }

  /**
   * The quota commit written with record `requestId` is done (`ok`: marked, so a replay skips it)
   * or was given up (the caller retried it for as long as it could): then it is written to the
   * journal's owed file for the next start's replay, and its record confirmed — usage the store
   * never took is not lost, and its segment does not stay on disk meanwhile. If even that write
   * fails, the record stays unconfirmed (the segment is replayed instead).
   */
  quotaSettled(requestId: string, ok = true): void {
    const owed = this.#awaitingQuota.get(requestId);
    const journal = this.#opts.journal;
    if (!owed || !journal) return;
    this.#awaitingQuota.delete(requestId);
    if (ok) journal.settled(requestId, owed.seg);
    else if (journal.owe(owed.q)) journal.confirm(owed.seg);
  }

  /** The backend behind the store (for messages and error events). */
  get store(): BackendName {
    return this.#opts.store ?? 'sqlite';
  }

  stats(): LedgerWriterStats {
    return { ...this.#stats, buffered: this.#buf.length };
  }

  /**
   * Write out what is buffered now (one attempt per batch; failures stay buffered). Inside the
   * backoff after a failure it does nothing, unless `now` (a reader that needs the store complete).
   */
  flush(now = false): Promise<void> {
    if (this.#flushing) return this.#flushing;
    const p = this.#drain(now).finally(() => {
      this.#flushing = undefined;
    });
    this.#flushing = p;
    return p;
  }

  /**
   * Records not in the store yet: buffered, or dropped from a full buffer and waiting in the
   * journal to be read back (#recoverDropped).
   */
  unwritten(): number {
    let n = this.#buf.length;
    for (const dropped of this.#droppedIn.values()) n += dropped;
    return n;
  }

  /** Milliseconds until the next retry after a failed flush (0: none pending). */
  retryInMs(): number {
    return Math.max(0, this.#retryAt - Date.now());
  }

  async #drain(now: boolean): Promise<void> {
    if (!now && Date.now() < this.#retryAt) return;
    while (this.#buf.length > 0 || this.#recoverDropped()) {
      const batch = this.#buf.slice(0, this.#o.maxBatch);
      let n: number;
      try {
        n = await this.#store.append(batch);
      } catch (error) {
        if (!isRefusedData(error)) throw this.#failed(error);
        await this.#appendOneByOne(batch.length, error);
        continue;
      }
      this.#written(batch.length, n);
    }
  }

  /** The first `count` buffered records are in the store (`n` of them new). */
  #written(count: number, n: number): void {
    this.#buf.splice(0, count);
    const journal = this.#opts.journal;
    if (journal) for (const seg of this.#segs.splice(0, count)) if (seg) journal.confirm(seg);
    this.#stats.flushes++;
    this.#stats.written += n;
    this.#stats.duplicates += count - n;
    this.#backoffMs = 0;
  }

  /** A failed append (the store, not the data): back off, report, and return the error to throw. */
  #failed(error: unknown): unknown {
    this.#stats.failedFlushes++;
    this.#backoffMs = Math.min(
      this.#o.retryMaxMs,
      this.#backoffMs ? this.#backoffMs * 2 : this.#o.retryBaseMs,
    );
    this.#retryAt = Date.now() + this.#backoffMs;
    const store = this.#opts.store ?? 'sqlite';
    this.#opts.hooks?.onError?.({ store, port: 'ledger', op: 'append', mode: 'retry', error });
    this.#opts.logger?.error(
      { err: error, store, buffered: this.#buf.length, retryInMs: this.#backoffMs },
      'ledger append failed; will retry',
    );
    return error;
  }

  /**
   * The store refused a batch of the first `count` buffered records for its data: append them one
   * at a time, dropping those it refuses. A store failure stops the pass (thrown, the rest stays
   * buffered for the next flush, which starts with a whole batch again).
   */
  async #appendOneByOne(count: number, batchError: unknown): Promise<void> {
    const store = this.#opts.store ?? 'sqlite';
    this.#opts.logger?.warn(
      { err: batchError, store, records: count },
      'ledger store refused a batch for its data; appending its records one by one',
    );
    for (let i = 0; i < count; i++) {
      const r = this.#buf[0] as LedgerRecord;
      let n: number;
      try {
        n = await this.#store.append([r]);
      } catch (error) {
        if (!isRefusedData(error)) throw this.#failed(error);
        this.#refused(r, error);
        continue;
      }
      this.#written(1, n);
    }
  }

  /** The first buffered record (`r`) is one the store refuses: drop it, for good. */
  #refused(r: LedgerRecord, error: unknown): void {
    this.#buf.shift();
    const seg = this.#segs.shift();
    // Confirmed: the store will never take it, so neither this process nor a replay retries it.
    if (seg) this.#opts.journal?.confirm(seg);
    this.#stats.dropped++;
    this.#stats.refused++;
    this.#opts.hooks?.onLedgerLost?.(1);
    this.#opts.logger?.error(
      {
        err: error,
        store: this.#opts.store ?? 'sqlite',
        id: r.id,
        tenant: r.tenant,
        key_id: r.key_id,
        model: r.model,
      },
      'ledger store refused a usage record; dropped (the other records are written)',
    );
  }

  /**
   * The buffer is empty (the store took everything): put the records dropped into the oldest such
   * segment back in it — the whole segment's records, the ones written already being no-ops for
   * the store — and owe that segment its confirmations once they are written. True if it did.
   */
  #recoverDropped(): boolean {
    const journal = this.#opts.journal;
    if (this.#closed || !journal || this.#droppedIn.size === 0) return false;
    const [seg, n] = this.#droppedIn.entries().next().value as [JournalSegment, number];
    this.#droppedIn.delete(seg);
    let records: LedgerRecord[];
    try {
      records = journal.recordsIn(seg);
    } catch (err) {
      // Unreadable: its records stay unconfirmed, for the next start's replay.
      this.#opts.logger?.error({ err, file: seg.file }, 'could not read dropped ledger records back');
      return this.#droppedIn.size > 0;
    }
    const owed = Math.min(n, records.length);
    for (let i = 0; i < records.length; i++) {
      this.#buf.push(records[i] as LedgerRecord);
      // Confirmed by the last `owed` of the group: by then every record of the segment is in.
      this.#segs.push(i >= records.length - owed ? seg : null);
    }
    this.#stats.recovered += n;
    this.#opts.logger?.warn(
      { records: n, file: seg.file, segmentsLeft: this.#droppedIn.size },
      'ledger store recovered: appending records dropped from the full buffer, read back from the journal',
    );
    return records.length > 0 || this.#droppedIn.size > 0;
  }

  /** Stop the timer and flush everything, retrying until `timeoutMs`. Records still unwritten then are counted as dropped. */
  async close(timeoutMs = 10_000): Promise<LedgerWriterStats> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const deadline = Date.now() + timeoutMs;
    while (this.#buf.length > 0 && Date.now() < deadline) {
      try {
        await this.flush();
      } catch {
        const wait = Math.max(0, Math.min(this.#retryAt, deadline) - Date.now());
        await new Promise((r) => setTimeout(r, wait));
      }
      if (this.#buf.length > 0 && Date.now() < this.#retryAt) {
        await new Promise((r) => setTimeout(r, Math.max(0, Math.min(this.#retryAt, deadline) - Date.now())));
      }
    }
    if (this.#buf.length > 0) {
      // Journaled ones stay in the journal: the next start replays them.
      this.#stats.dropped += this.#buf.length;
      const lost =
        this.#segs.length === 0 ? this.#buf.length : this.#segs.filter((s) => s === undefined).length;
      if (lost > 0) this.#opts.hooks?.onLedgerLost?.(lost);
      this.#segs = [];
      this.#opts.logger?.error(
        { lost: this.#buf.length, store: this.#opts.store },
        'ledger writer closed with unwritten records',
      );
      this.#buf = [];
    }
    // Quota commits of the last requests may still be on their way (Redis): give them a moment so
    // their journal records are confirmed, not replayed at the next start.
    const quotaDeadline = Math.min(deadline, Date.now() + 2000);
    while (this.#awaitingQuota.size > 0 && Date.now() < quotaDeadline)
      await new Promise((r) => setTimeout(r, 10));
    this.#opts.journal?.close();
    return this.stats();
  }
}
