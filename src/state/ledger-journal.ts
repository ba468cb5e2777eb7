/**
 * The usage ledger's crash journal: an append-only local file that every answered request's
 * ledger record is written to (one JSON line, fs.writeSync) before the response goes out — at once,
 * or with `defer` together with the other lines of the event-loop turn, the caller holding its
 * response until whenWritten() calls back — so a process crash (kill -9, OOM kill) cannot lose a record the batched LedgerWriter
 * had not yet written to SQLite/Postgres. A write() that returned is in the kernel's page cache:
 * it survives the process without fsync (an OS crash or power loss may still lose the last ones).
 *
 * Lines:
 *   {"r": LedgerRecord, "q": [id, tenant, scopes, day, month, held, requests, expiresAt, tokens]}
 *                                          a record (+ its quota settle: the reservation's fields
 *                                          the commit needs, as an array, which is cheaper to write
 *                                          than the object; readers also take {"res", "tokens"})
 *   {"s": ["<request id>", ...]}           those records' quota commits are confirmed
 *
 * A quota commit the process gave up on (its store refused it for the whole retry window, see
 * tenancy/quota-commits.ts) goes to `owed-quota.jsonl` in the same directory as `{"o": [...]}` (the
 * quota part alone), and its record is then confirmed: the next start commits it from there, and
 * its segment (with every newer one, deleted oldest first) need not stay on disk until then.
 *
 * The journal is a directory of segments (ledger-<seq>.jsonl). The current segment rolls when it
 * is large or old; a rolled segment is deleted once every record in it is confirmed in the store
 * (ledger append done and, when it carries one, the quota commit done), oldest first. At start-up
 * the segments an earlier process left behind are replayed (see replayJournal in factory.ts):
 * ledger appends are idempotent by request id, and a quota commit is re-applied only when no "s"
 * line says it happened (and the store's own per-reservation marker guards it a second time).
 *
 * Each process locks the directory it writes: an exclusive SQLite lock on `<dir>/journal.lock`,
 * held for the journal's life (as sqlite/gateway-lock.ts does for a data_dir). The OS drops it
 * when the process dies (kill -9 included), so the next process to start there takes the slot over
 * and replays it; two processes starting at once cannot both take one slot, and neither a reused
 * pid nor another PID namespace (containers sharing a volume) can fake an owner (the pid file this
 * replaced could: review, 2026-12-07). In distributed mode every replica needs its own directory
 * (its own volume); replicas started in the same directory (tests, one host) each take a free
 * `replica-<n>` slot under it. Within one process a later journal on a slot takes it over from an
 * earlier one that was never closed (what a crash leaves, as tests simulate it).
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { LedgerRecord, QuotaReservation, StateLogger } from './ports.js';

/** The quota settle a record implies: what releaseHolds commits for it. */
export interface JournalQuota {
  res: QuotaReservation;
  tokens: number;
}

export interface JournalEntry {
  r: LedgerRecord;
  q?: JournalQuota;
}

export interface JournalOptions {
  /** Roll the current segment at this size. Default 4 MiB. */
  segmentBytes?: number;
  /** Roll the current segment when it is this old and not empty (checked on tick). Default 2 s. */
  segmentMs?: number;
  logger?: StateLogger;
}

/** What an earlier process left behind. */
export interface JournalLeftovers {
  entries: JournalEntry[];
  /** Request ids whose quota commit was confirmed. */
  settled: Set<string>;
  /** Quota commits an earlier process gave up on (owed-quota.jsonl): each is committed at replay. */
  owed: JournalQuota[];
  /** Lines that could not be parsed (a line cut by the crash). */
  badLines: number;
  files: string[];
}

/** One segment file; `pending` counts confirmations still owed (ledger + quota). */
export interface JournalSegment {
  readonly seq: number;
  readonly file: string;
  fd: number | undefined;
  bytes: number;
  openedAt: number;
  pending: number;
}

const LOCK = 'journal.lock';
/** The lock file of versions before 2026-12-07 (a pid): removed when a slot is taken. */
const OLD_LOCK = 'owner.pid';
const SEGMENT_RE = /^ledger-(\d+)\.jsonl$/;
/** Quota commits given up in the process, for the next start (see the file comment). */
export const OWED_FILE = 'owed-quota.jsonl';

/** A slot's lock: the SQLite connection holding it, and the journal that owns it now. */
interface SlotLock {
  readonly db: Database.Database;
  owner: LedgerJournal | undefined;
}
/** The slots this process holds, by absolute path. */
const heldSlots = new Map<string, SlotLock>();

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** Take `dir` when no other process holds it (this process's own earlier hold is taken over). */
function tryLock(dir: string): SlotLock | undefined {
  mkdirSync(dir, { recursive: true });
  const key = resolve(dir);
  const mine = heldSlots.get(key);
  if (mine) return mine;
  const db = new Database(join(dir, LOCK));
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if (isBusy(err)) return undefined;
    throw err;
  }
  rmSync(join(dir, OLD_LOCK), { force: true });
  const lock: SlotLock = { db, owner: undefined };
  heldSlots.set(key, lock);
  return lock;
}

function unlock(dir: string, lock: SlotLock): void {
  heldSlots.delete(resolve(dir));
  try {
    lock.db.exec('ROLLBACK');
  } catch {
    // the transaction is gone with the connection anyway
  } finally {
    lock.db.close();
  }
}

/** The quota part of a journal line (see the file comment): what QuotaStore.commit needs. */
type PackedQuota = [string, string, string[], string, string, number, number, number, number];

function packQuota(q: JournalQuota): PackedQuota {
  const r = q.res;
  return [
    r.id,
    r.tenant,
    r.scopes,
    r.windows.day,
    r.windows.month,
    r.tokens,
    r.requests,
    r.expiresAt,
    q.tokens,
  ];
}

/** A line's quota part back to a JournalQuota (array form, or the object form older lines used). */
function unpackQuota(v: unknown): JournalQuota | undefined {
  if (Array.isArray(v)) {
    const [id, tenant, scopes, day, month, held, requests, expiresAt, tokens] = v as Partial<PackedQuota>;
    if (typeof id !== 'string' || typeof tenant !== 'string' || !Array.isArray(scopes)) return undefined;
    return {
      res: {
        id,
        tenant,
        scopes: scopes.map(String),
        windows: { day: String(day), month: String(month) },
        tokens: Number(held) || 0,
        requests: Number(requests) || 0,
        owner: '',
        expiresAt: Number(expiresAt) || 0,
      },
      tokens: Number(tokens) || 0,
    };
  }
  const o = v as Partial<JournalQuota> | undefined;
  return o?.res && typeof o.res.id === 'string' ? { res: o.res, tokens: Number(o.tokens) || 0 } : undefined;
}

/** Parse segment files (oldest first); a torn or corrupt line is skipped and counted. */
export function readSegments(files: readonly string[]): JournalLeftovers {
  const out: JournalLeftovers = {
    entries: [],
    settled: new Set(),
    owed: [],
    badLines: 0,
    files: [...files],
  };
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (line.length === 0) continue;
      try {
        const v = JSON.parse(line) as { r?: LedgerRecord; q?: unknown; s?: unknown; o?: unknown };
        if (Array.isArray(v.s)) for (const id of v.s as unknown[]) out.settled.add(String(id));
        else if (v.o !== undefined) {
          const q = unpackQuota(v.o);
          if (q) out.owed.push(q);
          else out.badLines++;
        } else if (typeof v.s === 'string') out.settled.add(v.s);
        else if (v.r && typeof v.r.id === 'string') {
          const q = v.q === undefined ? undefined : unpackQuota(v.q);
          if (v.q !== undefined && !q) out.badLines++;
          else out.entries.push(q ? { r: v.r, q } : { r: v.r });
        } else out.badLines++;
      } catch {
        out.badLines++;
      }
    }
  }
  return out;
}

function segmentsIn(dir: string): Array<{ seq: number; file: string }> {
  if (!existsSync(dir)) return [];
  const list: Array<{ seq: number; file: string }> = [];
  for (const name of readdirSync(dir)) {
    const m = SEGMENT_RE.exec(name);
    if (m?.[1]) list.push({ seq: Number(m[1]), file: join(dir, name) });
  }
  return list.sort((a, b) => a.seq - b.seq);
}

export class LedgerJournal {
  /** The directory this process writes (the base, or a replica-<n> slot under it). */
  readonly dir: string;
  readonly #o: Required<Omit<JournalOptions, 'logger'>>;
  readonly #logger: StateLogger | undefined;
  /** Oldest first; the last one is current (open). */
  readonly #segments: JournalSegment[] = [];
  #seq: number;
  #leftoverFiles: string[];
  #closed = false;
  #settledIds: string[] = [];
  #settledSegs: JournalSegment[] = [];
  /** Lines appended with `defer` and not yet written (all for the current segment). */
  #deferred: string[] = [];
  /** Callbacks waiting for the deferred lines to be written. */
  #waiters: Array<() => void> = [];
  #flushScheduled = false;
  /** The last attempt to write the quota settle notes failed (logged once per failing streak). */
  #settledFailing = false;
  /** Lines appended in this event-loop turn, and in the turn before (for `defer`'s choice). */
  #turnLines = 0;
  #lastTurnLines = 0;

  readonly #lock: SlotLock;

  private constructor(
    dir: string,
    lock: SlotLock,
    firstSeq: number,
    leftovers: string[],
    opts: JournalOptions,
  ) {
    this.dir = dir;
    this.#lock = lock;
    lock.owner = this;
    this.#seq = firstSeq;
    this.#leftoverFiles = leftovers;
    this.#logger = opts.logger;
    this.#o = { segmentBytes: opts.segmentBytes ?? 4 * 1024 * 1024, segmentMs: opts.segmentMs ?? 2000 };
  }

  /** Lock a directory under `baseDir` (the base itself, else the first free replica-<n>) and open it. */
  static open(baseDir: string, opts: JournalOptions = {}): LedgerJournal {
    let dir: string | undefined;
    let lock: SlotLock | undefined;
    for (let i = 0; i < 256 && lock === undefined; i++) {
      dir = i === 0 ? baseDir : join(baseDir, `replica-${i}`);
      lock = tryLock(dir);
    }
    if (lock === undefined || dir === undefined)
      throw new Error(`no free ledger journal slot under ${baseDir}`);
    const old = segmentsIn(dir);
    const next = (old.at(-1)?.seq ?? 0) + 1;
    const leftovers = old.map((s) => s.file);
    if (existsSync(join(dir, OWED_FILE))) leftovers.push(join(dir, OWED_FILE));
    return new LedgerJournal(dir, lock, next, leftovers, opts);
  }

  /** Segments an earlier process left (read once, at start-up). */
  leftovers(): JournalLeftovers {
    return readSegments(this.#leftoverFiles);
  }

  /** The leftovers were replayed: delete their files. */
  discardLeftovers(): void {
    for (const f of this.#leftoverFiles) rmSync(f, { force: true });
    this.#leftoverFiles = [];
  }

  #current(): JournalSegment {
    const cur = this.#segments.at(-1);
    if (cur?.fd !== undefined) return cur;
    const seq = this.#seq++;
    const file = join(this.dir, `ledger-${String(seq).padStart(10, '0')}.jsonl`);
    const seg: JournalSegment = {
      seq,
      file,
      fd: openSync(file, 'a'),
      bytes: 0,
      openedAt: Date.now(),
      pending: 0,
    };
    this.#segments.push(seg);
    return seg;
  }

  #write(line: string): JournalSegment {
    const seg = this.#current();
    const fd = seg.fd as number;
    const size = Buffer.byteLength(line);
    let written = 0;
    try {
      written = writeSync(fd, line);
      if (written < size) {
        // A short write (disk nearly full): finish it or throw.
        const buf = Buffer.from(line, 'utf8');
        while (written < size) written += writeSync(fd, buf, written, size - written);
      }
    } catch (err) {
      // The line may be cut part-way (disk full): the next line must not be appended to the
      // fragment, which would make a good record unreadable at replay. It starts a new segment;
      // this one keeps its confirmations owed and is deleted as usual once they are in.
      seg.bytes += written;
      this.#closeSegment(seg);
      throw err;
    }
    seg.bytes += size;
    return seg;
  }

  #closeSegment(seg: JournalSegment): void {
    if (seg.fd === undefined) return;
    const fd = seg.fd;
    seg.fd = undefined;
    try {
      closeSync(fd);
    } catch (err) {
      this.#logger?.warn({ err, file: seg.file }, 'could not close a ledger journal segment');
    }
  }

  /**
   * Write one record. Synchronously, or with `defer` queued for one write per event-loop turn
   * (setImmediate) together with the other deferred lines of the turn: a caller that defers must
   * hold back what the record's durability protects (the response's bytes) until whenWritten()
   * calls back. Returns its segment: confirm() it once per confirmation owed (1, or 2 when it
   * carries a quota settle).
   *
   * A deferred line that is the turn's first, after a turn that wrote at most one, is written at
   * once instead (whenWritten() then calls back at once): at low concurrency a turn finishes one
   * request, and waiting for the turn's end would only delay its response (the setImmediate hop cost
   * ~16 µs of a c=1 request's critical path on a slow VM, bench/pipeline-report.md Session 9).
   * Under load, turns finish several requests and their lines share one write as before; a burst
   * after a quiet turn costs at most one write more.
   */
  append(entry: JournalEntry, defer = false): JournalSegment {
    if (this.#closed) throw new Error('ledger journal closed');
    const line = entry.q
      ? `{"r":${JSON.stringify(entry.r)},"q":${JSON.stringify(packQuota(entry.q))}}\n`
      : `{"r":${JSON.stringify(entry.r)}}\n`;
    const now = defer && this.#turnLines === 0 && this.#lastTurnLines <= 1;
    this.#turnLines++;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#lastTurnLines = this.#turnLines;
        this.#turnLines = 0;
        this.flushDeferred();
      });
    }
    if (defer && !now) {
      const seg = this.#current();
      this.#deferred.push(line);
      seg.pending += entry.q ? 2 : 1;
      return seg;
    }
    this.flushDeferred();
    const seg = this.#write(line);
    seg.pending += entry.q ? 2 : 1;
    if (seg.bytes >= this.#o.segmentBytes) this.#roll();
    return seg;
  }

  /** `cb` runs once every line appended so far is written (at once when none is waiting). */
  whenWritten(cb: () => void): void {
    if (this.#deferred.length === 0) cb();
    else this.#waiters.push(cb);
  }

  /** Write the deferred lines now (one write), then call back whoever waits for them. */
  flushDeferred(): void {
    if (this.#deferred.length === 0) return;
    const lines = this.#deferred;
    const waiters = this.#waiters;
    this.#deferred = [];
    this.#waiters = [];
    try {
      const seg = this.#write(lines.length === 1 ? (lines[0] as string) : lines.join(''));
      if (seg.bytes >= this.#o.segmentBytes) this.#roll();
    } catch (err) {
      // Disk full or the like: the records are still in the ledger writer's buffer for the store.
      this.#logger?.error({ err, records: lines.length }, 'ledger journal write failed');
    }
    // Each waiter sends a response: one that throws must not leave the others unsent, nor escape
    // (from the setImmediate flush it would be an uncaught exception).
    for (const w of waiters) {
      try {
        w();
      } catch (err) {
        this.#logger?.error({ err }, 'a response waiting for the ledger journal failed');
      }
    }
  }

  /**
   * The quota commit of `requestId` is confirmed. Noted in memory and written as one line per
   * batch on the next tick (not on the hot path); only then is its record confirmed, so the note
   * outlives the record's segment. A crash before that line is written leaves the commit to the
   * store's own per-reservation idempotency at replay.
   */
  settled(requestId: string, seg: JournalSegment): void {
    // After close the segments stay as they are for the next start (which replays the commit; the
    // store's per-reservation marker makes a commit that did happen a no-op).
    if (this.#closed) return;
    this.#settledIds.push(requestId);
    this.#settledSegs.push(seg);
  }

  #writeSettled(): void {
    if (this.#settledIds.length === 0 || this.#closed) return;
    const ids = this.#settledIds;
    const segs = this.#settledSegs;
    try {
      this.#write(`${JSON.stringify({ s: ids })}\n`);
    } catch (err) {
      // Disk full: the notes stay queued for the next tick (their records stay unconfirmed, so
      // their segments are kept), and this runs from a timer: nothing may escape.
      if (!this.#settledFailing)
        this.#logger?.error({ err, ids: ids.length }, 'ledger journal: writing quota settle notes failed');
      this.#settledFailing = true;
      return;
    }
    this.#settledFailing = false;
    this.#settledIds = [];
    this.#settledSegs = [];
    for (const seg of segs) seg.pending = Math.max(0, seg.pending - 1);
    this.#sweep();
  }

  /** The ledger records in one of this process's segments (its deferred lines written first). */
  recordsIn(seg: JournalSegment): LedgerRecord[] {
    this.flushDeferred();
    return readSegments([seg.file]).entries.map((e) => e.r);
  }

  /**
   * A quota commit this process gave up on: written to owed-quota.jsonl for the next start's
   * replay. True when written (the caller may then confirm its record); false when closed or the
   * write failed (then its record must stay unconfirmed: the segment is the only copy).
   */
  owe(q: JournalQuota): boolean {
    if (this.#closed) return false;
    try {
      appendFileSync(join(this.dir, OWED_FILE), `${JSON.stringify({ o: packQuota(q) })}\n`);
      return true;
    } catch (err) {
      this.#logger?.error(
        { err, requestId: q.res.id },
        'ledger journal: could not write an owed quota commit',
      );
      return false;
    }
  }

  confirm(seg: JournalSegment): void {
    // A confirmation after close (a quota commit that ended after shutdown's wait) must not delete
    // a segment the next start is to replay.
    if (this.#closed) return;
    seg.pending = Math.max(0, seg.pending - 1);
    this.#sweep();
  }

  #roll(): void {
    this.flushDeferred();
    const cur = this.#segments.at(-1);
    if (cur?.fd === undefined) return;
    this.#closeSegment(cur);
    this.#sweep();
  }

  /** Delete rolled segments whose records are all confirmed, oldest first (never past an unconfirmed one). */
  #sweep(): void {
    while (this.#segments.length > 0) {
      const s = this.#segments[0] as JournalSegment;
      if (s.fd !== undefined || s.pending > 0) return;
      this.#segments.shift();
      try {
        unlinkSync(s.file);
      } catch (err) {
        this.#logger?.warn({ err, file: s.file }, 'could not delete a confirmed ledger journal segment');
      }
    }
  }

  /** Called periodically: roll an old non-empty segment so confirmed records leave the disk. */
  tick(now?: number): void {
    this.flushDeferred();
    this.#writeSettled();
    // The time is read after the writes above, which may have opened the segment checked here.
    const t = now ?? Date.now();
    const cur = this.#segments.at(-1);
    if (cur?.fd !== undefined && cur.bytes > 0 && t - cur.openedAt >= this.#o.segmentMs) this.#roll();
  }

  /** Records written and not yet confirmed. */
  pending(): number {
    return this.#segments.reduce((n, s) => n + s.pending, 0);
  }

  /** Segment files on disk (current included). */
  files(): string[] {
    return this.#segments.map((s) => s.file);
  }

  /**
   * Close the files. Segments whose records are all confirmed are deleted; the others stay for the
   * next start to replay. Releases the directory lock.
   */
  close(): void {
    if (this.#closed) return;
    this.flushDeferred();
    this.#writeSettled();
    this.#roll();
    this.#closed = true;
    if (this.#segments.length > 0)
      this.#logger?.warn(
        { pending: this.pending(), files: this.#segments.length, dir: this.dir },
        'ledger journal closed with unconfirmed records; the next start replays them',
      );
    // A journal that a later one in this process took the slot over from leaves the lock alone.
    if (this.#lock.owner === this) unlock(this.dir, this.#lock);
  }
}
