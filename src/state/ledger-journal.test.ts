import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs, {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LedgerJournal, OWED_FILE } from './ledger-journal.js';
import { LedgerWriter } from './ledger-writer.js';
import { replayJournal } from './factory.js';
import { MemoryLedgerStore } from './memory/catalog.js';
import { MemoryQuotaStore } from './memory/quotas.js';
import type { LedgerRecord, QuotaReservation, StateLogger } from './ports.js';

function rec(id: string, tokensOut = 1): LedgerRecord {
  return {
    id,
    time: Date.UTC(2026, 10, 22),
    tenant: 'acme',
    key_id: null,
    model: 'm',
    backend: 'b',
    tokens_in: 2,
    tokens_out: tokensOut,
    estimated: false,
    cost_usd: 0,
    latency_ms: 1,
    status: 200,
    cache_hit: false,
    request_id: id,
  };
}

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'portico-journal-'));
}

function segments(d: string): string[] {
  return readdirSync(d).filter((f) => f.startsWith('ledger-'));
}

/** A quota reservation of 100 tokens against a 1,000-token daily quota. */
async function reservation(q: MemoryQuotaStore): Promise<QuotaReservation> {
  const r = await q.reserve({
    tenant: 'acme',
    scopes: [{ name: 'tenant', limits: { day: { tokens: 1000 } } }],
    tokens: 100,
    owner: 'dead',
  });
  assert.ok(r.ok);
  return r.reservation;
}

/** A writer on a fresh journal (segments roll at every tick), a ledger and a quota reservation. */
async function writerWithJournal(): Promise<{
  d: string;
  ledger: MemoryLedgerStore;
  quotas: MemoryQuotaStore;
  res: QuotaReservation;
  journal: LedgerJournal;
  w: LedgerWriter;
}> {
  const d = dir();
  const ledger = new MemoryLedgerStore();
  const quotas = new MemoryQuotaStore();
  const res = await reservation(quotas);
  const journal = LedgerJournal.open(d, { segmentMs: 0 });
  const w = new LedgerWriter(ledger, { journal, flushIntervalMs: 60_000 });
  return { d, ledger, quotas, res, journal, w };
}

/** A logger that keeps the messages of errors and warnings. */
function logged(): { logger: StateLogger; messages: string[] } {
  const messages: string[] = [];
  const keep = (_o: object, m: string): void => void messages.push(m);
  return { logger: { error: keep, warn: keep }, messages };
}

/** Disk errors on demand: fs.writeSync (which the journal imports) replaced until restore(). */
function failingWrites(fail: (call: number, data: unknown) => 'ok' | 'partial' | 'enospc'): () => void {
  const real = fs.writeSync;
  let call = 0;
  const enospc = (): never => {
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };
  (fs as { writeSync: unknown }).writeSync = (fd: number, data: string | Buffer, ...rest: unknown[]) => {
    const how = fail(call++, data);
    if (how === 'enospc') enospc();
    if (how === 'partial') return real(fd, Buffer.from(data as string).subarray(0, 40));
    return (real as (...a: unknown[]) => number)(fd, data, ...rest);
  };
  syncBuiltinESMExports();
  return () => {
    (fs as { writeSync: unknown }).writeSync = real;
    syncBuiltinESMExports();
  };
}

describe('LedgerJournal', () => {
  it('writes one line per record synchronously and hands the lines to the next process', () => {
    const d = dir();
    const j = LedgerJournal.open(d);
    j.append({ r: rec('a') });
    j.append({ r: rec('b') });
    // On disk already, before any flush or close (what a kill -9 leaves).
    const files = segments(d);
    assert.equal(files.length, 1);
    const lines = readFileSync(join(d, files[0] as string), 'utf8')
      .trim()
      .split('\n');
    assert.equal(lines.length, 2);
    // A "crashed" process never closes; the next one (same pid here: the lock is stale) replays.
    const next = LedgerJournal.open(d);
    const left = next.leftovers();
    assert.deepEqual(
      left.entries.map((e) => e.r.id),
      ['a', 'b'],
    );
    assert.equal(left.badLines, 0);
    next.discardLeftovers();
    assert.equal(segments(d).length, 0);
  });

  it('tolerates a last line cut by the crash', () => {
    const d = dir();
    const j = LedgerJournal.open(d);
    j.append({ r: rec('a') });
    const f = join(d, segments(d)[0] as string);
    appendFileSync(f, '{"r":{"id":"b","time":17');
    const left = LedgerJournal.open(d).leftovers();
    assert.deepEqual(
      left.entries.map((e) => e.r.id),
      ['a'],
    );
    assert.equal(left.badLines, 1);
  });

  it('rolls segments and deletes them oldest first once every record in them is confirmed', () => {
    const d = dir();
    const j = LedgerJournal.open(d, { segmentBytes: 1 }); // every record rolls its segment
    const s1 = j.append({ r: rec('a') });
    const s2 = j.append({ r: rec('b') });
    assert.equal(segments(d).length, 2);
    j.confirm(s2); // the newer one is confirmed first: kept while an older one is not
    assert.equal(segments(d).length, 2);
    j.confirm(s1);
    assert.equal(segments(d).length, 0);
    assert.equal(j.pending(), 0);
  });

  it('rolls an old non-empty segment on tick, and close keeps only unconfirmed segments', () => {
    const d = dir();
    const j = LedgerJournal.open(d, { segmentMs: 10 });
    const s1 = j.append({ r: rec('a') });
    j.tick(Date.now() + 1000);
    j.append({ r: rec('b') }); // a new segment
    assert.equal(segments(d).length, 2);
    j.confirm(s1);
    assert.equal(segments(d).length, 1);
    j.close();
    assert.equal(segments(d).length, 1);
    assert.equal(existsSync(join(d, 'owner.pid')), false);
    assert.deepEqual(
      LedgerJournal.open(d)
        .leftovers()
        .entries.map((e) => e.r.id),
      ['b'],
    );
  });

  it('a directory locked by a live process gives the next one a replica slot', async () => {
    const d = dir();
    // Another process holds the slot's lock (as a running gateway does) until told to stop.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(join(d, 'journal.lock'))});
         db.pragma('locking_mode = EXCLUSIVE'); db.exec('BEGIN EXCLUSIVE'); console.log('held');
         process.stdin.on('data', () => process.exit(0));`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await once(holder.stdout, 'data');
    try {
      const j = LedgerJournal.open(d);
      assert.equal(j.dir, join(d, 'replica-1'));
      j.close();
    } finally {
      holder.stdin.end('stop');
      await once(holder, 'exit');
    }
    // The holder is gone (the OS dropped its lock): the next journal takes the base slot.
    const again = LedgerJournal.open(d);
    assert.equal(again.dir, d);
    again.close();
  });

  it('processes starting at once on a slot whose owner died each get a slot of their own', async () => {
    const d = dir();
    // The lock file of an older version naming a dead process: not a lock any more.
    writeFileSync(join(d, 'owner.pid'), '999999\n');
    const at = Date.now() + 1500;
    const child = (): Promise<string> =>
      new Promise((res, rej) => {
        const p = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            '-e',
            `import { LedgerJournal } from ${JSON.stringify(join(import.meta.dirname, 'ledger-journal.ts'))};
             while (Date.now() < ${at}) {}
             const j = LedgerJournal.open(${JSON.stringify(d)}); console.log(j.dir);
             setTimeout(() => process.exit(0), 1500);`,
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        p.stdout.on('data', (c: Buffer) => (out += c.toString()));
        p.on('error', rej);
        p.on('exit', () => res(out.trim()));
      });
    const dirs = await Promise.all([child(), child(), child(), child()]);
    // Before (a pid file read, then overwritten): two owners of one slot in 6 rounds of 6.
    assert.equal(new Set(dirs).size, 4, `slots: ${dirs.join(', ')}`);
    assert.ok(dirs.includes(d));
  });
});

describe('LedgerJournal under write errors (review, 2026-12-07)', () => {
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

  it('a waiter that throws neither keeps the others waiting nor escapes the flush', async () => {
    const { logger, messages } = logged();
    const j = LedgerJournal.open(dir(), { logger });
    j.append({ r: rec('w1') }, true);
    j.append({ r: rec('w2') }, true);
    await turn(); // a busy turn: the next turn's lines are deferred
    j.append({ r: rec('a') }, true);
    const released: string[] = [];
    j.whenWritten(() => {
      throw new Error('writeHead refused a header');
    });
    j.whenWritten(() => released.push('b'));
    // Before: the exception escaped (from the setImmediate flush: an uncaught exception, the
    // process exits) and 'b' was never released.
    assert.doesNotThrow(() => j.flushDeferred());
    assert.deepEqual(released, ['b']);
    assert.ok(messages.includes('a response waiting for the ledger journal failed'));
    j.close();
  });

  it('a line cut by a failed write is never followed by the next one in the same file', async () => {
    const { logger } = logged();
    const d = dir();
    const j = LedgerJournal.open(d, { logger });
    j.append({ r: rec('w1') }, true);
    j.append({ r: rec('w2') }, true);
    await turn();
    j.append({ r: rec('x1') }, true);
    j.append({ r: rec('x2') }, true);
    // The turn's one write gets 40 bytes out, then the disk is full.
    const restore = failingWrites((call) => (call === 0 ? 'partial' : 'enospc'));
    try {
      await turn();
    } finally {
      restore();
    }
    j.append({ r: rec('y1') }); // space again: a later answer's line
    j.close();
    const left = LedgerJournal.open(d).leftovers();
    // Before: y1 was appended to the fragment of x1's line and both were one bad line.
    assert.deepEqual(
      left.entries.map((e) => e.r.id),
      ['w1', 'w2', 'y1'],
    );
    assert.equal(left.badLines, 1);
  });

  it('a disk full when the quota settle notes are written: nothing escapes, they are written on a later tick', async () => {
    const { logger, messages } = logged();
    const d = dir();
    const res = await reservation(new MemoryQuotaStore());
    const j = LedgerJournal.open(d, { logger, segmentMs: 0 });
    const w = new LedgerWriter(new MemoryLedgerStore(), { journal: j, flushIntervalMs: 60_000 });
    w.write(rec('a'), { res, tokens: 3 });
    await w.flush();
    j.tick(); // the record's segment rolls; its quota commit is still owed
    assert.equal(j.pending(), 1);
    // The next segment (where the notes go) is on a full disk.
    symlinkSync('/dev/full', join(d, 'ledger-0000000002.jsonl'));
    w.quotaSettled('a');
    assert.doesNotThrow(() => j.tick()); // before: ENOSPC thrown from the writer's timer
    assert.equal(j.pending(), 1, 'the record stays owed while its note is unwritten');
    assert.ok(messages.includes('ledger journal: writing quota settle notes failed'));
    j.tick(); // the next tick writes the note in a new segment
    assert.equal(j.pending(), 0);
    assert.deepEqual(segments(d), []);
    await w.close();
  });

  it('a confirmation that arrives after close keeps the segment for the next start', async () => {
    const d = dir();
    const res = await reservation(new MemoryQuotaStore());
    const j = LedgerJournal.open(d);
    const seg = j.append({ r: rec('a'), q: { res, tokens: 3 } }); // 2 owed
    j.close();
    assert.equal(segments(d).length, 1);
    // The store's append and the quota commit end after shutdown's wait: before, these late
    // confirmations deleted the segment the next start was to replay.
    j.confirm(seg);
    j.confirm(seg);
    j.settled('a', seg);
    assert.equal(segments(d).length, 1);
    assert.deepEqual(
      LedgerJournal.open(d)
        .leftovers()
        .entries.map((e) => e.r.id),
      ['a'],
    );
  });
});

describe('journal replay', () => {
  it('is idempotent: records already in the ledger are not duplicated, quota commits made once', async () => {
    const d = dir();
    const ledger = new MemoryLedgerStore();
    const quotas = new MemoryQuotaStore();
    const res1 = await reservation(quotas);
    const res2 = await reservation(quotas);
    const j = LedgerJournal.open(d);
    j.append({ r: rec('a', 5), q: { res: res1, tokens: 7 } });
    const s2 = j.append({ r: rec('b', 3), q: { res: res2, tokens: 5 } });
    // b was written to the ledger and its quota committed before the crash; a was not.
    await ledger.append([rec('b', 3)]);
    await quotas.commit(res2, { tokens: 5, requests: 1 });
    j.settled('b', s2);
    j.tick();

    const r1 = await replayJournal(LedgerJournal.open(d), ledger, quotas);
    assert.equal(r1.records, 2);
    assert.equal(r1.inserted, 1);
    assert.equal(r1.quotaCommits, 1);
    assert.equal(await ledger.count({ tenant: 'acme' }), 2);
    const u = await quotas.usage('acme', 'tenant', 'day');
    assert.equal(u.usedTokens, 12);
    assert.equal(u.usedRequests, 2);
    assert.equal(u.reservedTokens, 0);
    assert.equal(segments(d).length, 0);

    // A second replay of the same lines (a crash during replay) changes nothing.
    const j2 = LedgerJournal.open(d);
    j2.append({ r: rec('a', 5), q: { res: res1, tokens: 7 } });
    const r2 = await replayJournal(LedgerJournal.open(d), ledger, quotas);
    assert.equal(r2.inserted, 0);
    assert.equal(await ledger.count({ tenant: 'acme' }), 2);
    assert.equal((await quotas.usage('acme', 'tenant', 'day')).usedTokens, 12);
  });

  it('deferred appends share one write per event-loop turn (the first of a quiet turn at once); whenWritten waits for it', async () => {
    const d = dir();
    const j = LedgerJournal.open(d);
    const lines = (): number =>
      segments(d).reduce(
        (n, f) => n + readFileSync(join(d, f), 'utf8').split('\n').filter(Boolean).length,
        0,
      );
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    const order: string[] = [];
    // Quiet (no turn before wrote more than one line): the turn's first line is written at once.
    const segA = j.append({ r: rec('a') }, true);
    assert.equal(lines(), 1, 'the first line of a quiet turn is written at once');
    j.whenWritten(() => order.push('a at once'));
    assert.deepEqual(order, ['a at once']);
    // A second line in the same turn waits for the turn's end.
    j.append({ r: rec('b') }, true);
    assert.equal(lines(), 1, 'the second line of the turn is deferred');
    assert.equal(j.pending(), 2, 'owed confirmations counted at append');
    j.whenWritten(() => order.push(`written:${lines()}`));
    assert.equal(order.length, 1);
    await turn();
    assert.deepEqual(
      order,
      ['a at once', 'written:2'],
      'the callback runs once the deferred line is in the file',
    );
    // That turn wrote two lines (busy): the next turn's lines all wait for its end, in one write.
    j.append({ r: rec('c') }, true);
    assert.equal(lines(), 2, 'after a busy turn the first line is deferred too');
    // A synchronous append writes what is deferred first (order kept).
    j.append({ r: rec('d') });
    assert.equal(lines(), 4);
    await turn();
    j.append({ r: rec('e') }, true);
    assert.equal(lines(), 4, 'c and d made a busy turn');
    await turn();
    assert.equal(lines(), 5);
    // A turn of one line: quiet again.
    j.append({ r: rec('f') }, true);
    assert.equal(lines(), 6, 'after a one-line turn the first line is written at once');
    j.append({ r: rec('g') }, true);
    assert.equal(lines(), 6);
    j.close();
    assert.equal(lines(), 7, 'close writes the deferred line');
    const text = readFileSync(join(d, segments(d)[0] as string), 'utf8');
    assert.deepEqual(
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { r: LedgerRecord }).r.id),
      ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
    );
    j.confirm(segA);
    const left = LedgerJournal.open(d).leftovers();
    assert.equal(left.entries.length, 7);
  });

  it('replays the quota part in both line forms (packed array, and the object form of older lines)', async () => {
    const d = dir();
    const ledger = new MemoryLedgerStore();
    const quotas = new MemoryQuotaStore();
    const res1 = await reservation(quotas);
    const res2 = await reservation(quotas);
    const j = LedgerJournal.open(d);
    j.append({ r: rec('new', 4), q: { res: res1, tokens: 9 } });
    j.close();
    const [seg] = segments(d);
    const line = readFileSync(join(d, seg as string), 'utf8');
    assert.match(line, /"q":\["/, 'the quota part is written as an array');
    assert.ok(!line.includes('"owner"'), 'the owner is not needed to commit, so not written');
    // An older process wrote the object form; a third line has a quota part nothing can commit.
    appendFileSync(
      join(d, seg as string),
      `${JSON.stringify({ r: rec('old', 2), q: { res: res2, tokens: 6 } })}\n` +
        `${JSON.stringify({ r: rec('bad', 1), q: [42] })}\n`,
    );
    const r = await replayJournal(LedgerJournal.open(d), ledger, quotas);
    assert.equal(r.records, 2);
    assert.equal(r.badLines, 1);
    assert.equal(r.quotaCommits, 2);
    const u = await quotas.usage('acme', 'tenant', 'day');
    assert.equal(u.usedTokens, 15);
    assert.equal(u.reservedTokens, 0);
  });

  it('a quota commit given up goes to the owed file: its segments can go, the next start commits it', async () => {
    const { d, ledger, quotas, res, journal, w } = await writerWithJournal();
    w.write(rec('a'), { res, tokens: 9 });
    await w.flush();
    // The store never took the commit (retried until given up, tenancy/quota-commits.ts).
    w.quotaSettled('a', false);
    // Review (2026-12-07): leaving its record unconfirmed kept its segment, and every newer one
    // (deleted oldest first), on disk for the life of the process.
    for (let i = 0; i < 50; i++) {
      w.write(rec(`later-${i}`));
      await w.flush();
      journal.tick();
    }
    assert.equal(journal.pending(), 0);
    assert.deepEqual(segments(d), [], 'no segment pinned by the given-up commit');
    assert.ok(existsSync(join(d, OWED_FILE)), 'the commit is in the owed file');
    await w.close();
    // The next start: the commit is replayed from the owed file, once; the file is then gone.
    const r = await replayJournal(LedgerJournal.open(d), ledger, quotas);
    assert.equal(r.quotaCommits, 1);
    const u = await quotas.usage('acme', 'tenant', 'day');
    assert.equal(u.usedTokens, 9);
    assert.equal(u.reservedTokens, 0);
    assert.ok(!existsSync(join(d, OWED_FILE)));
    const again = await replayJournal(LedgerJournal.open(d), ledger, quotas);
    assert.equal(again.quotaCommits, 0);
  });

  it('records dropped from a full buffer are read back from the journal once the store recovers', async () => {
    const d = dir();
    let down = true;
    const store = new MemoryLedgerStore();
    const flaky = Object.assign(Object.create(store) as MemoryLedgerStore, {
      append: (records: LedgerRecord[]) =>
        down ? Promise.reject(new Error('store down')) : store.append(records),
    });
    let lost = 0;
    const journal = LedgerJournal.open(d, { segmentMs: 0 });
    const w = new LedgerWriter(flaky, {
      journal,
      flushIntervalMs: 60_000,
      maxBuffer: 5,
      retryBaseMs: 1,
      retryMaxMs: 1,
      hooks: { onLedgerLost: (n) => (lost += n) },
    });
    for (let i = 0; i < 12; i++) {
      w.write(rec(`r${i}`));
      if (i % 4 === 3) journal.tick(); // records spread over three segments
    }
    await w.flush().catch(() => undefined);
    assert.equal(w.stats().dropped, 7, 'the buffer holds 5');
    assert.equal(lost, 0, 'dropped, not lost: the journal has them');
    down = false;
    await new Promise((r) => setTimeout(r, 5));
    await w.flush();
    // Before: 5 in the store, the other 7 only at the next start's replay, their segments kept.
    assert.equal(await store.count({}), 12);
    assert.equal(w.stats().recovered, 7);
    assert.equal(journal.pending(), 0);
    journal.tick();
    assert.deepEqual(segments(d), [], 'every segment confirmed and deleted');
    await w.close();
  });

  it('without a journal a dropped record is lost, and counted as such', async () => {
    let lost = 0;
    const store = new MemoryLedgerStore();
    const w = new LedgerWriter(
      Object.assign(Object.create(store) as MemoryLedgerStore, {
        append: () => Promise.reject(new Error('store down')),
      }),
      { flushIntervalMs: 60_000, maxBuffer: 2, hooks: { onLedgerLost: (n) => (lost += n) } },
    );
    for (let i = 0; i < 5; i++) w.write(rec(`x${i}`));
    assert.equal(lost, 3);
    await w.close(50);
    assert.equal(lost, 5, 'and what is still buffered at close');
  });

  it('the writer confirms journal records once the store has them and the quota commit is settled', async () => {
    const { d, res, journal, w } = await writerWithJournal();
    w.write(rec('a'), { res, tokens: 3 });
    w.write(rec('b'));
    assert.equal(journal.pending(), 3);
    await w.flush();
    assert.equal(journal.pending(), 1); // a's quota commit is still owed
    journal.tick();
    assert.equal(segments(d).length, 1);
    w.quotaSettled('a');
    assert.equal(journal.pending(), 1); // until the batched "s" line is written on the next tick
    journal.tick();
    assert.equal(journal.pending(), 0);
    // The "s" line went to a new segment, rolled at once (segmentMs 0): nothing is left on disk.
    assert.equal(segments(d).length, 0);
    await w.close();
    assert.equal(segments(d).length, 0);
  });

  it('a record the store refuses is confirmed in the journal (its segment can go) and skipped by a replay (review, 2026-12-14)', async () => {
    const { d, ledger, journal, w } = await writerWithJournal();
    w.write(rec('a'));
    w.write({ ...rec('bad'), key_id: 'ci\u0000key' });
    w.write(rec('b'));
    await w.flush();
    assert.equal(await ledger.count({}), 2);
    assert.equal(journal.pending(), 0, 'the refused record owes the journal nothing');
    journal.tick();
    assert.deepEqual(segments(d), []);
    await w.close();

    // A journal an earlier process left with such a record (it crashed first): the replay writes
    // the others and deletes the files, where it used to fail at every start and keep them.
    const d2 = dir();
    const left = LedgerJournal.open(d2);
    left.append({ r: rec('x') });
    left.append({ r: { ...rec('poison'), model: '\ud800' } });
    left.append({ r: rec('y') });
    const { logger, messages } = logged();
    const ledger2 = new MemoryLedgerStore();
    const out = await replayJournal(LedgerJournal.open(d2), ledger2, new MemoryQuotaStore(), logger);
    assert.equal(out.error, undefined);
    assert.deepEqual([out.records, out.inserted, out.refused], [3, 2, 1]);
    assert.equal(await ledger2.count({}), 2);
    assert.deepEqual(segments(d2), []);
    assert.ok(
      messages.some((m) => m.includes('refused')),
      messages.join('; '),
    );
  });
});
