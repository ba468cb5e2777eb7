import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { downloadProgress, formatBytes, progressLine } from './progress.js';

describe('download progress', () => {
  it('says bytes, rate and ETA', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(120 * 2 ** 20), '120 MiB');
    assert.equal(
      progressLine('model', 100 * 2 ** 20, 400 * 2 ** 20, 10),
      'model: [#####...............] 25% 100 MiB of 400 MiB, 10 MiB/s, ETA 30s',
    );
    assert.match(progressLine('model', 0, 0, 0), /^model: 0% 0 B of \?, 0 B\/s, ETA \?$/);
  });

  it('without a terminal: one line per 10 %; on a terminal: redrawn in place', () => {
    const plain: string[] = [];
    let t = 0;
    const p = downloadProgress(
      'm',
      (s) => plain.push(s),
      false,
      () => t,
    );
    for (let done = 0; done <= 100; done += 5) {
      t += 100;
      p.update(done, 100);
    }
    p.finish();
    assert.equal(plain.length, 11);
    assert.ok(plain.every((l) => l.endsWith('\n')));
    assert.match(plain[10] ?? '', /100% 100 B of 100 B/);

    const tty: string[] = [];
    t = 0;
    const q = downloadProgress(
      'm',
      (s) => tty.push(s),
      true,
      () => t,
    );
    q.update(10, 100);
    t += 50;
    q.update(20, 100); // within 100 ms: not redrawn
    t += 100;
    q.update(100, 100);
    q.finish();
    assert.equal(tty.length, 3);
    assert.ok(tty[0]?.startsWith('\r'));
    assert.equal(tty[2], '\n');
  });
});
