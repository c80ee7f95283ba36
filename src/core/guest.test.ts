import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MachineConfig } from '../api-types/machine.js';
import { HangarError } from './errors.js';
import { DEFAULT_GUEST, guestFromPreset, normalizeGuest } from './guest.js';

describe('guestFromPreset', () => {
  test('shared presets give 256 MiB per CPU', () => {
    for (const cpus of [1, 2, 4, 6, 8]) {
      assert.deepEqual(guestFromPreset(`shared-cpu-${cpus}x`), { cpu_kind: 'shared', cpus, memory_mb: 256 * cpus });
    }
  });

  test('performance presets give 2048 MiB per CPU', () => {
    for (const cpus of [1, 2, 4, 6, 8, 10, 12, 14, 16]) {
      assert.deepEqual(guestFromPreset(`performance-${cpus}x`), { cpu_kind: 'performance', cpus, memory_mb: 2048 * cpus });
    }
    assert.deepEqual(guestFromPreset('performance-4x'), { cpu_kind: 'performance', cpus: 4, memory_mb: 8192 });
  });

  test('refuses unknown sizes', () => {
    for (const size of ['shared-cpu-3x', 'shared-cpu-16x', 'performance-3x', 'performance-32x', 'shared-1x', 'SHARED-CPU-1X', 'shared-cpu-1x ', '', 'a100-40gb']) {
      assert.equal(guestFromPreset(size), undefined, size);
    }
  });
});

describe('normalizeGuest', () => {
  const image = 'nginx';

  test('fills the defaults; shared CPUs default to 256 MiB or 128 MiB per CPU, whichever is more', () => {
    assert.deepEqual(DEFAULT_GUEST, { cpu_kind: 'shared', cpus: 1, memory_mb: 256 });
    assert.deepEqual(normalizeGuest({ image }).guest, { cpu_kind: 'shared', cpus: 1, memory_mb: 256 });
    assert.deepEqual(normalizeGuest({ image, guest: { cpus: 4 } }).guest, { cpu_kind: 'shared', cpus: 4, memory_mb: 512 });
  });

  test('performance CPUs default to their minimum memory', () => {
    assert.deepEqual(normalizeGuest({ image, guest: { cpu_kind: 'performance' } }).guest, { cpu_kind: 'performance', cpus: 1, memory_mb: 1024 });
    assert.deepEqual(normalizeGuest({ image, guest: { cpu_kind: 'performance', cpus: 2 } }).guest, { cpu_kind: 'performance', cpus: 2, memory_mb: 2048 });
  });

  test('resolves size into guest and drops size; explicit guest fields win', () => {
    const config = normalizeGuest({ image, size: 'shared-cpu-2x' });
    assert.deepEqual(config.guest, { cpu_kind: 'shared', cpus: 2, memory_mb: 512 });
    assert.equal('size' in config, false);
    assert.deepEqual(normalizeGuest({ image, size: 'performance-1x', guest: { memory_mb: 4096 } }).guest, { cpu_kind: 'performance', cpus: 1, memory_mb: 4096 });
  });

  test('keeps the other config fields and other guest fields, and does not modify its input', () => {
    const input: MachineConfig = { image, env: { A: '1' }, guest: { cpus: 2, kernel_args: ['quiet'] } };
    const copy = structuredClone(input);
    const out = normalizeGuest(input);
    assert.deepEqual(input, copy);
    assert.deepEqual(out, { image, env: { A: '1' }, guest: { cpu_kind: 'shared', cpus: 2, memory_mb: 256, kernel_args: ['quiet'] } });
  });

  test('accepts memory at the limits', () => {
    assert.equal(normalizeGuest({ image, guest: { memory_mb: 128 } }).guest?.memory_mb, 128);
    assert.equal(normalizeGuest({ image, guest: { memory_mb: 2048 } }).guest?.memory_mb, 2048);
    assert.equal(normalizeGuest({ image, guest: { cpus: 2, memory_mb: 4096 } }).guest?.memory_mb, 4096);
    assert.equal(normalizeGuest({ image, guest: { cpu_kind: 'performance', cpus: 2, memory_mb: 16384 } }).guest?.memory_mb, 16384);
  });

  test('too much memory for shared CPUs names the field and the fix', () => {
    assert.throws(() => normalizeGuest({ image, guest: { memory_mb: 4096 } }), (err: unknown) => {
      assert.ok(err instanceof HangarError);
      assert.equal(err.code, 'invalid_argument');
      assert.equal(
        err.message,
        'config.guest.memory_mb: 4096 is out of range for 1 shared CPU (128-2048 MiB); set memory_mb to at most 2048, or raise guest.cpus or use cpu_kind "performance"',
      );
      return true;
    });
  });

  test('too little memory for performance CPUs names the field and the fix', () => {
    assert.throws(() => normalizeGuest({ image, guest: { cpu_kind: 'performance', cpus: 2, memory_mb: 1024 } }), {
      code: 'invalid_argument',
      message: 'config.guest.memory_mb: 1024 is out of range for 2 performance CPUs (2048-16384 MiB); set memory_mb to at least 2048, or lower guest.cpus',
    });
    assert.throws(() => normalizeGuest({ image, guest: { cpu_kind: 'performance', memory_mb: 512 } }), {
      message: 'config.guest.memory_mb: 512 is out of range for 1 performance CPU (1024-8192 MiB); set memory_mb to at least 1024',
    });
  });

  test('too much memory for performance CPUs suggests more CPUs', () => {
    assert.throws(() => normalizeGuest({ image, guest: { cpu_kind: 'performance', memory_mb: 16384 } }), {
      message: 'config.guest.memory_mb: 16384 is out of range for 1 performance CPU (1024-8192 MiB); set memory_mb to at most 8192, or raise guest.cpus',
    });
  });

  test('an unknown size names config.size and the choices', () => {
    assert.throws(() => normalizeGuest({ image, size: 'huge' }), {
      code: 'invalid_argument',
      message: 'config.size: unknown size "huge"; use shared-cpu-{1,2,4,6,8}x or performance-{1,2,4,...,16}x',
    });
  });

  test('the root of the field path can be changed', () => {
    assert.throws(() => normalizeGuest({ image, guest: { memory_mb: 99999 } }, 'machines[0].config'), /^HangarError: machines\[0\]\.config\.guest\.memory_mb: /);
  });
});
