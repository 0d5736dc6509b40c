import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendAll } from './arrays.ts';

test('appendAll appends in order, past the number of arguments one call can take', () => {
  const target = [-2, -1];
  const items = Array.from({ length: 300_000 }, (_, i) => i);
  assert.equal(appendAll(target, items), target);
  assert.equal(target.length, 300_002);
  assert.deepEqual(target.slice(0, 4), [-2, -1, 0, 1]);
  assert.equal(target.at(-1), 299_999);
});
