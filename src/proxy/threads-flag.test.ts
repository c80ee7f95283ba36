import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultProxyThreads, MAX_PROXY_THREADS, parseThreads } from './threads-flag.js';

test('--threads takes 1..MAX_PROXY_THREADS and names the flag, the value and the range otherwise', () => {
  assert.equal(parseThreads('threads', '1'), 1);
  assert.equal(parseThreads('threads', ' 2 '), 2);
  assert.equal(parseThreads('threads', String(MAX_PROXY_THREADS)), MAX_PROXY_THREADS);
  for (const bad of ['0', '17', '-1', '1.5', 'two', '']) {
    assert.throws(() => parseThreads('proxy-threads', bad), { message: `--proxy-threads: expected a whole number of threads from 1 to 16 (at most one per core the proxy may use), got ${JSON.stringify(bad)}` });
  }
});

test('without the flag: two threads where there are two cores or more, one on a single core', () => {
  assert.equal(defaultProxyThreads(1), 1);
  assert.equal(defaultProxyThreads(2), 2);
  assert.equal(defaultProxyThreads(64), 2);
});
