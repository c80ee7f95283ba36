import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { until } from './waiting.js';

describe('until', () => {
  it('answers the first value that is neither undefined nor false', async () => {
    let calls = 0;
    const value = await until('the third call', () => (++calls >= 3 ? { calls } : calls === 1 ? undefined : false), 1000, 1);
    assert.deepEqual(value, { calls: 3 });
  });

  it('answers other falsy values such as 0 and the empty string', async () => {
    assert.equal(await until('zero', async () => 0, 1000, 1), 0);
    assert.equal(await until('empty', () => '', 1000, 1), '');
  });

  // The API tests rely on this: a condition that never comes must fail them, naming what was awaited.
  it('throws naming what it waited for once the time is up', async () => {
    const started = Date.now();
    await assert.rejects(until('a thing that never happens', () => false, 100, 5), { message: 'timed out waiting for a thing that never happens' });
    const took = Date.now() - started;
    assert.ok(took >= 100 && took < 2000, `gave up after ${took} ms`);
  });
});
