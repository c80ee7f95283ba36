import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestIds } from './request-ids.js';

const take = (ids: RequestIds) => {
  const b = Buffer.alloc(ids.length);
  ids.next(b);
  return b.toString('latin1');
};

test('request ids: base, 8 base-36 digits counting from 0, region', () => {
  const ids = new RequestIds('lcl', 'kx1abc');
  assert.equal(ids.length, 'kx1abc00000000-lcl'.length);
  assert.equal(take(ids), 'kx1abc00000000-lcl');
  assert.equal(take(ids), 'kx1abc00000001-lcl');
  for (let i = 2; i < 36; i++) take(ids);
  assert.equal(take(ids), 'kx1abc00000010-lcl'); // 36 in base 36: the carry
  for (let i = 37; i < 36 * 36; i++) take(ids);
  assert.equal(take(ids), 'kx1abc00000100-lcl');
});

test('request ids: every id is different from the previous 50,000, and the counter wraps instead of growing', () => {
  const ids = new RequestIds('ams');
  const seen = new Set<string>();
  for (let i = 0; i < 50_000; i++) seen.add(take(ids));
  assert.equal(seen.size, 50_000);
  assert.match([...seen][0]!, /^[0-9a-z]+00000000-ams$/);

  const wrapping = new RequestIds('lcl', 'b');
  // Set the counter to zzzzzzzz by hand: the next id wraps to 00000000 at the same length.
  (wrapping as unknown as { last: Buffer }).last.write('zzzzzzzy', 1, 'latin1');
  assert.equal(take(wrapping), 'bzzzzzzzz-lcl');
  assert.equal(take(wrapping), 'b00000000-lcl');
});
