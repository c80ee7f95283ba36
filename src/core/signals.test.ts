import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SIGNALS, STOP_SIGNALS, USER_SIGNALS, resolveSignal, signalName, signalNumber } from './signals.js';

describe('signal table', () => {
  test('has the Linux x86-64 numbers', () => {
    assert.equal(SIGNALS.SIGHUP, 1);
    assert.equal(SIGNALS.SIGINT, 2);
    assert.equal(SIGNALS.SIGKILL, 9);
    assert.equal(SIGNALS.SIGUSR1, 10);
    assert.equal(SIGNALS.SIGUSR2, 12);
    assert.equal(SIGNALS.SIGTERM, 15);
  });

  test('STOP_SIGNALS and USER_SIGNALS are in the table', () => {
    for (const name of [...STOP_SIGNALS, ...USER_SIGNALS]) assert.ok(name in SIGNALS, name);
    for (const name of STOP_SIGNALS) assert.ok(USER_SIGNALS.includes(name), name);
    assert.equal(USER_SIGNALS.includes('SIGBUS'), false, 'SIGBUS is not in Fly\'s SignalRequest enum');
    assert.equal(resolveSignal('SIGBUS'), undefined);
  });

  test('signalNumber and signalName are inverses', () => {
    for (const [name, num] of Object.entries(SIGNALS)) {
      assert.equal(signalNumber(name as keyof typeof SIGNALS), num);
      assert.equal(signalName(num), name);
    }
    assert.equal(signalName(0), undefined);
    assert.equal(signalName(16), undefined);
    assert.equal(signalName(64), undefined);
  });
});

describe('resolveSignal', () => {
  test('accepts full names, in any case, with spaces around', () => {
    assert.equal(resolveSignal('SIGTERM'), 'SIGTERM');
    assert.equal(resolveSignal('sigkill'), 'SIGKILL');
    assert.equal(resolveSignal(' SIGUSR1 '), 'SIGUSR1');
  });

  test('accepts short names', () => {
    assert.equal(resolveSignal('TERM'), 'SIGTERM');
    assert.equal(resolveSignal('kill'), 'SIGKILL');
    assert.equal(resolveSignal('Hup'), 'SIGHUP');
    assert.equal(resolveSignal('USR2'), 'SIGUSR2');
  });

  test('accepts numbers and strings of numbers', () => {
    assert.equal(resolveSignal(9), 'SIGKILL');
    assert.equal(resolveSignal(15), 'SIGTERM');
    assert.equal(resolveSignal('2'), 'SIGINT');
    assert.equal(resolveSignal('10'), 'SIGUSR1');
  });

  test('refuses unknown names, unknown numbers and other types', () => {
    for (const value of ['SIGFOO', 'FOO', '', 'SIG', '99', 99, 0, -9, 9.5, '9.0', ' 9', null, undefined, true, {}, ['SIGTERM']]) {
      assert.equal(resolveSignal(value), undefined, JSON.stringify(value));
    }
  });

  test('refuses signals outside the allowed list', () => {
    assert.equal(resolveSignal('SIGSEGV', STOP_SIGNALS), undefined);
    assert.equal(resolveSignal(11, STOP_SIGNALS), undefined);
    assert.equal(resolveSignal('ABRT', STOP_SIGNALS), undefined);
    assert.equal(resolveSignal('SIGTERM', STOP_SIGNALS), 'SIGTERM');
    assert.equal(resolveSignal(9, STOP_SIGNALS), 'SIGKILL');
    assert.equal(resolveSignal('SIGSEGV'), 'SIGSEGV');
  });
});
