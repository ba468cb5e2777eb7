import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Cancel, cancellableOf } from './abort.js';

describe('Cancel: an AbortController made on first use', () => {
  it('callbacks run once on abort; an un-registered one does not; the reason is kept', () => {
    const c = new Cancel();
    const calls: string[] = [];
    c.onAbort(() => calls.push('a'));
    const off = c.onAbort(() => calls.push('b'));
    off();
    assert.equal(c.aborted, false);
    const why = new Error('client left');
    c.abort(why);
    c.abort(new Error('again'));
    assert.deepEqual(calls, ['a']);
    assert.equal(c.aborted, true);
    assert.equal(c.reason, why);
    c.onAbort(() => calls.push('late'));
    assert.deepEqual(calls, ['a'], 'registered after the abort: not called');
  });

  it('a signal asked for after the abort is already aborted with the same reason; one asked before follows it', () => {
    const early = new Cancel();
    const signal = early.signal;
    let fired = 0;
    signal.addEventListener('abort', () => fired++);
    const why = new Error('deadline');
    early.abort(why);
    assert.equal(fired, 1);
    assert.equal(signal.reason, why);
    assert.equal(early.signal, signal, 'one signal');

    const late = new Cancel();
    late.abort();
    assert.equal(late.signal.aborted, true);
    assert.equal((late.reason as DOMException).name, 'AbortError');
    assert.equal(late.signal.reason, late.reason);
  });

  it('cancellableOf(signal) reads and registers through the signal', () => {
    const ac = new AbortController();
    const c = cancellableOf(ac.signal);
    let n = 0;
    const off = c.onAbort(() => n++);
    c.onAbort(() => n++);
    off();
    ac.abort(new Error('x'));
    assert.equal(n, 1);
    assert.equal(c.aborted, true);
    assert.equal((c.reason as Error).message, 'x');
  });
});
