import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { pgFailure, pgRun, type PgContext } from './db.js';
import { StateConflictError, StateUnavailableError } from '../errors.js';
import { BackendHealth } from '../health.js';
import type { StateErrorEvent } from '../ports.js';

function dbError(code: string): pg.DatabaseError {
  const e = new pg.DatabaseError('x', 1, 'error');
  e.code = code;
  return e;
}
function sysError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect' });
}

describe('pgFailure', () => {
  it('connection-class failures are down', () => {
    for (const e of [
      sysError('ECONNREFUSED'),
      sysError('ECONNRESET'),
      sysError('ETIMEDOUT'),
      sysError('EPIPE'),
      sysError('ENOTFOUND'),
      Object.assign(new AggregateError([sysError('ECONNREFUSED')]), { code: 'ECONNREFUSED' }),
      new Error('Connection terminated unexpectedly'),
      new Error('Connection terminated due to connection timeout'),
      new Error('Query read timeout'),
      new Error('Client has encountered a connection error and is not queryable'),
      dbError('57P01'), // admin_shutdown (pg_terminate_backend)
      dbError('57P03'), // cannot_connect_now (starting up)
      dbError('08006'),
      dbError('53300'), // too_many_connections
      dbError('28P01'), // password authentication failed
      dbError('3D000'), // database does not exist
    ])
      assert.equal(pgFailure(e), 'down', String(e));
  });

  it('the server answering "not now" is transient', () => {
    for (const c of ['40001', '40P01', '55P03', '57014', '53100', '53200', '58030'])
      assert.equal(pgFailure(dbError(c)), 'transient', c);
    // The pool had no free connection in time: the queries holding them decide the store's state.
    assert.equal(pgFailure(new Error('timeout exceeded when trying to connect')), 'transient');
  });

  it('data errors, constraint violations and bugs are not the store being unavailable', () => {
    for (const e of [
      dbError('23505'),
      dbError('23503'),
      dbError('22P02'),
      dbError('22021'),
      dbError('42P01'),
      new TypeError('Client was passed a null or undefined query'),
      new Error('insert returned no row'),
      new StateConflictError('exists'),
      'a string',
    ])
      assert.equal(pgFailure(e), 'other', String(e));
  });
});

describe('pgRun', () => {
  const ctx = (events: StateErrorEvent[]): PgContext => ({
    pool: undefined as unknown as pg.Pool,
    s: '"t"',
    hooks: { onError: (e) => events.push(e) },
    health: new BackendHealth('postgres', { intervalMs: 0 }),
  });

  it('maps an unreachable server to StateUnavailableError, marks it down, and back up on success', async () => {
    const events: StateErrorEvent[] = [];
    const c = ctx(events);
    await assert.rejects(
      pgRun(c, 'keys', 'revoke', () => Promise.reject(new Error('Connection terminated unexpectedly'))),
      (e: unknown) => e instanceof StateUnavailableError && e.store === 'postgres',
    );
    assert.equal(c.health?.up, false);
    assert.deepEqual(
      events.map((e) => [e.port, e.op, e.mode]),
      [['keys', 'revoke', 'fail_closed']],
    );
    assert.equal(await pgRun(c, 'keys', 'get', () => Promise.resolve(7)), 7);
    assert.equal(c.health?.up, true);
    c.health?.close();
  });

  it('a read on connections the server ended runs again on the next one; a write does not', async () => {
    const events: StateErrorEvent[] = [];
    const c = ctx(events);
    let calls = 0;
    const endedTwice = (): Promise<number> =>
      ++calls <= 2 ? Promise.reject(new Error('Connection terminated unexpectedly')) : Promise.resolve(5);
    // pg_terminate_backend left two ended connections in the pool: the read is answered, the
    // store is not marked down, and nothing is counted (a single try failed and marked it down).
    assert.equal(await pgRun(c, 'tenants', 'list', endedTwice), 5);
    assert.equal(calls, 3);
    assert.equal(c.health?.up, true);
    assert.deepEqual(events, []);
    // A write that may have been applied before its connection ended is not sent twice.
    calls = 0;
    await assert.rejects(pgRun(c, 'keys', 'revoke', endedTwice), StateUnavailableError);
    assert.equal(calls, 1);
    // A connection that could not be made (a partition) is not an ended one: no second wait.
    calls = 0;
    const timesOut = (): Promise<number> => {
      calls++;
      return Promise.reject(new Error('Connection terminated due to connection timeout'));
    };
    await assert.rejects(pgRun(c, 'tenants', 'list', timesOut), StateUnavailableError);
    assert.equal(calls, 1);
    c.health?.close();
  });

  it('a transient failure is a 503 but the store stays up; a data error passes through unchanged', async () => {
    const events: StateErrorEvent[] = [];
    const c = ctx(events);
    await assert.rejects(
      pgRun(c, 'tenants', 'update', () => Promise.reject(dbError('40P01'))),
      StateUnavailableError,
    );
    assert.equal(c.health?.up, true);
    const dup = dbError('23505');
    await assert.rejects(
      pgRun(c, 'tenants', 'create', () => Promise.reject(dup)),
      (e: unknown) => e === dup,
    );
    assert.equal(events.length, 1);
    // Not counted when the caller counts it (key cache lookups, ledger appends).
    await assert.rejects(
      pgRun(c, 'keys', 'lookup', () => Promise.reject(sysError('ECONNREFUSED')), false),
      StateUnavailableError,
    );
    assert.equal(events.length, 1);
    c.health?.close();
  });
});
