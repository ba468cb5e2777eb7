import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress } from './progress.js';
import { parseJudgeScore, extractText } from './client.js';

const snap = {
  done: 5,
  passed: 3,
  checkFailed: 1,
  errors: 1,
  inFlight: 2,
  elapsedMs: 1000,
  total: 10,
  durationMs: 0,
};

test('progress: a bar redrawn in place on a TTY, throttled; plain lines otherwise', () => {
  const out: string[] = [];
  const p = new Progress({ isTTY: true, columns: 100, write: (s) => out.push(s) > 0 });
  p.update(snap);
  p.update({ ...snap, elapsedMs: 1010 });
  assert.equal(out.length, 1, 'redraws at most every 100 ms');
  const line = out[0] ?? '';
  assert.ok(line.startsWith('\r\u001b[2K['), 'returns to column 0 and clears the line');
  assert.match(line, /\[#+-+\] +50% 5\/10 passed=3 check_failed=1 errors=1 in-flight=2 5\.0 req\/s 1\.0s$/);
  p.finish({ ...snap, done: 10, elapsedMs: 2000 });
  assert.equal(out.at(-1), '\n');
  const plain: string[] = [];
  const q = new Progress({ isTTY: false, write: (s) => plain.push(s) > 0 });
  q.update(snap);
  q.update({ ...snap, elapsedMs: 2000 });
  q.finish(snap);
  assert.deepEqual(plain.length, 2);
  assert.ok(plain.every((l) => l.startsWith('bench: 5/10 ') && l.endsWith('\n')));
  const silent: string[] = [];
  new Progress({ write: (s) => silent.push(s) > 0 }, false).finish(snap);
  assert.equal(silent.length, 0);
});

test('judge scores and answer extraction', () => {
  assert.equal(parseJudgeScore('4'), 4);
  assert.equal(parseJudgeScore('Score: 5/5'), 5);
  assert.equal(parseJudgeScore('I would rate it 3.'), 3);
  assert.equal(parseJudgeScore('10'), null);
  assert.equal(parseJudgeScore('excellent'), null);
  assert.equal(extractText({ choices: [{ message: { content: 'hi' } }] }), 'hi');
  assert.equal(extractText({ choices: [{ text: 'legacy' }] }), 'legacy');
  assert.equal(extractText({ prediction: 'team' }), 'team');
  assert.equal(extractText({ nothing: 1 }), null);
});
