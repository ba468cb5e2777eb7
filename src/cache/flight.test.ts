import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Flight, FlightTable } from './flight.js';
import { Cancel } from '../lib/abort.js';

describe('Flight', () => {
  it('changed() resolves at the next chunk, end or failure', async () => {
    const f = new Flight();
    const waits = [f.changed(), f.changed(new Cancel())];
    assert.equal(f.waiting, 2);
    f.push('a');
    await Promise.all(waits);
    assert.equal(f.waiting, 0);
    const end = f.changed();
    f.finish();
    await end;
    assert.equal(f.settled, true);
  });

  it("a waiter leaves on its own request's cancellation, and is dropped from the flight", async () => {
    const f = new Flight();
    const cancels = Array.from({ length: 100 }, () => new Cancel());
    const waits = cancels.map((c) => f.changed(c));
    assert.equal(f.waiting, 100);
    const reason = new Error('deadline');
    for (const c of cancels) c.abort(reason);
    for (const w of waits) await assert.rejects(w, (e) => e === reason);
    // Before: changed() took no cancellation; every waiter stayed until the flight changed.
    assert.equal(f.waiting, 0, 'no waiter left behind');
    await assert.rejects(f.changed(cancels[0]), (e) => e === reason, 'already cancelled: at once');
    assert.equal(f.waiting, 0);
  });

  it('the call is cancelled when the last reader leaves before it settled, not before', () => {
    let abandoned = 0;
    const f = new Flight(() => abandoned++);
    const leader = new Cancel();
    const follower = new Cancel();
    const a = f.join(leader);
    f.join(follower);
    assert.equal(f.readers, 2);
    leader.abort(); // the leader's client leaves: the call goes on for the follower
    assert.equal(f.readers, 1);
    a.leave(); // idempotent
    assert.equal(f.readers, 1);
    assert.equal(f.cancel.aborted, false);
    const reason = new Error('follower deadline');
    follower.abort(reason);
    assert.equal(f.readers, 0);
    assert.equal(f.cancel.aborted, true);
    assert.equal(f.cancel.reason, reason, "with the last reader's reason");
    assert.equal(abandoned, 1);
  });

  it('readers leaving a settled flight cancel nothing', () => {
    let abandoned = 0;
    const f = new Flight(() => abandoned++);
    const r = f.join(new Cancel());
    f.finish('body');
    r.leave();
    assert.equal(f.cancel.aborted, false);
    assert.equal(abandoned, 0);
  });

  it('an abandoned flight leaves the table (no one joins a call being cancelled)', () => {
    const table = new FlightTable();
    const f = table.start('k');
    const c = new Cancel();
    f.join(c);
    assert.equal(table.get('k'), f);
    c.abort();
    assert.equal(table.get('k'), undefined);
    assert.equal(table.size, 0);
    // A later flight under the same key is not removed by the old one's end.
    const g = table.start('k');
    table.end('k', f);
    assert.equal(table.get('k'), g);
  });
});
