import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { MachineConfig } from '../api-types/machine.js';
import { HangarError } from './errors.js';
import { parseWith } from './validation.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HangarError, 'expected a HangarError');
    assert.equal(err.code, 'invalid_argument');
    return err.message;
  }
  assert.fail('expected a throw');
}

describe('parseWith', () => {
  test('returns the parsed value', () => {
    const schema = z.object({ n: z.number().transform((n) => n * 2) });
    assert.deepEqual(parseWith(schema, { n: 2, extra: true }), { n: 4 });
  });

  test('names the field path under the root, with the value received', () => {
    const message = messageOf(() => parseWith(MachineConfig, { image: 'nginx', guest: { cpus: 'two' } }, 'config'));
    assert.match(message, /^config\.guest\.cpus: /);
    assert.match(message, /, got "two"$/);
  });

  test('array indexes are written in brackets', () => {
    const message = messageOf(() => parseWith(MachineConfig, { image: 'nginx', services: [{ protocol: 'tcp', internal_port: 70000 }] }, 'config'));
    assert.equal(message, 'config.services[0].internal_port: must be a port number 1-65535, got 70000');
    const top = messageOf(() => parseWith(z.array(z.number()), [1, 'x']));
    assert.match(top, /^\[1\]: .*, got "x"$/);
  });

  test('without a root the path starts at the field', () => {
    const message = messageOf(() => parseWith(MachineConfig, { image: 'nginx', guest: { memory_mb: 64 } }));
    assert.equal(message, 'guest.memory_mb: must be at least 128 (MiB), got 64');
  });

  test('a problem with the whole value is reported on body', () => {
    const message = messageOf(() => parseWith(z.object({ a: z.string() }), 'nope'));
    assert.match(message, /^body: .*, got "nope"$/);
  });

  test('a missing field names the field and has no "got"', () => {
    const message = messageOf(() => parseWith(z.object({ a: z.string() }), {}, 'config'));
    assert.match(message, /^config\.a: /);
    assert.doesNotMatch(message, /got/);
  });

  test('custom refinements keep their message without a value', () => {
    const message = messageOf(() => parseWith(MachineConfig, { image: 'nginx', files: [{ guest_path: '/etc/x' }] }, 'config'));
    assert.equal(message, 'config.files[0]: set exactly one of raw_value, secret_name or image_config');
  });

  test('several problems are joined, at most five', () => {
    const schema = z.object(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, z.string()])));
    const message = messageOf(() => parseWith(schema, Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, i]))));
    const parts = message.split('; ');
    assert.equal(parts.length, 5);
    assert.match(parts[0]!, /^f0: .*, got 0$/);
  });

  test('long values are shortened', () => {
    const message = messageOf(() => parseWith(z.object({ a: z.number() }), { a: 'x'.repeat(200) }));
    assert.ok(message.endsWith('...'), message);
    assert.ok(message.length < 150, message);
  });
});
