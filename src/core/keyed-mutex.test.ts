import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedMutex } from './keyed-mutex.js';

describe('KeyedMutex', () => {
  test('runs work for one key one after the other, in call order', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    let inside = 0;
    const job = (name: string, ms: number) => mutex.run('m1', async () => {
      inside++;
      assert.equal(inside, 1, `${name} overlapped another job`);
      log.push(`${name}:start`);
      await sleep(ms);
      log.push(`${name}:end`);
      inside--;
      return name;
    });
    const results = await Promise.all([job('a', 30), job('b', 1), job('c', 10)]);
    assert.deepEqual(results, ['a', 'b', 'c']);
    assert.deepEqual(log, ['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
  });

  test('runs work for different keys in parallel', async () => {
    const mutex = new KeyedMutex();
    let inside = 0;
    let most = 0;
    const job = (key: string) => mutex.run(key, async () => {
      inside++;
      most = Math.max(most, inside);
      await sleep(20);
      inside--;
    });
    await Promise.all([job('a'), job('b'), job('c')]);
    assert.equal(most, 3, 'keys should not wait for each other');
  });

  test('continues after a rejection, and the rejection reaches its caller', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    const failing = mutex.run('m1', async () => {
      await sleep(5);
      log.push('failing');
      throw new Error('boom');
    });
    const next = mutex.run('m1', async () => {
      log.push('next');
      return 42;
    });
    await assert.rejects(failing, /boom/);
    assert.equal(await next, 42);
    assert.deepEqual(log, ['failing', 'next']);
  });

  test('a synchronous throw is a rejection and does not block the key', async () => {
    const mutex = new KeyedMutex();
    await assert.rejects(mutex.run('m1', () => { throw new Error('sync'); }), /sync/);
    assert.equal(await mutex.run('m1', async () => 'ok'), 'ok');
  });

  test('forgets keys once their work is done', async () => {
    const mutex = new KeyedMutex();
    await Promise.all([mutex.run('a', async () => 1), mutex.run('a', async () => 2), mutex.run('b', async () => 3)]);
    await sleep(0);
    const tails = (mutex as unknown as { tails: Map<string, unknown> }).tails;
    assert.equal(tails.size, 0);
  });
});
