/**
 * Assertions shared by tests: the one way to check that a call fails with a given error code.
 * @module
 */
import assert from 'node:assert/strict';
import { HangarError } from '../core/errors.js';

/** Awaits `promise`, asserts it rejects with a `HangarError` of `code` (and `pattern` in its message). */
export async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<HangarError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HangarError, `expected a HangarError with code ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected a ${code} error`);
}
