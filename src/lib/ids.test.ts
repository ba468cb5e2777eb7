import { it } from 'node:test';
import assert from 'node:assert/strict';
import { newRequestId } from './ids.js';

it('request ids: req_ + 24 hex, unique, in creation order across milliseconds', async () => {
  const first = Array.from({ length: 1000 }, () => newRequestId());
  for (const id of first) assert.match(id, /^req_[0-9a-f]{24}$/);
  assert.equal(new Set(first).size, first.length, 'no duplicates within a millisecond');
  await new Promise((r) => setTimeout(r, 5));
  const later = newRequestId();
  for (const id of first) assert.ok(id < later, `${id} sorts before ${later}`);
  // The time part is the creation time in ms.
  const ms = parseInt(later.slice(4, 16), 16);
  assert.ok(Math.abs(ms - Date.now()) < 1000);
});
