import assert from 'node:assert/strict';
import { test } from 'node:test';
import { latin1 } from './latin1-strings.js';

test('latin1: answers the bytes as a string, the same string for the same bytes, a new one for other bytes', () => {
  const head = Buffer.from('Host: web.localhost\r\nHost: api.localhost\r\nX: caf\xe9\r\n', 'latin1');
  const first = latin1(head, 6, 19);
  assert.equal(first, 'web.localhost');
  assert.equal(latin1(Buffer.from('xxweb.localhost', 'latin1'), 2, 15), 'web.localhost');
  assert.equal(latin1(head, 27, 40), 'api.localhost');
  assert.equal(latin1(head, 6, 19), 'web.localhost');
  assert.equal(latin1(head, 45, 49), 'caf\xe9');
  assert.equal(latin1(head, 3, 3), '');
});

test('latin1: a value changed in place (a reused read buffer) is read again, not answered from memory', () => {
  const buf = Buffer.from('keep-alive', 'latin1');
  assert.equal(latin1(buf, 0, buf.length), 'keep-alive');
  buf.write('KEEP-alive', 0, 'latin1');
  assert.equal(latin1(buf, 0, buf.length), 'KEEP-alive');
});

test('latin1: many different values (slots overwritten) and long values stay exact', () => {
  for (let i = 0; i < 5000; i++) {
    const v = `v${i}.example-${i % 7}`;
    assert.equal(latin1(Buffer.from(`: ${v}\r\n`, 'latin1'), 2, 2 + v.length), v);
  }
  const long = 'x'.repeat(200) + 'y';
  assert.equal(latin1(Buffer.from(long, 'latin1'), 0, long.length), long);
});
