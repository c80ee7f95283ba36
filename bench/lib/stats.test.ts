import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stats } from './stats.js';

test('percentiles are nearest-rank: of 100 samples p99 is the 99th smallest, not the maximum', () => {
  const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted order on purpose
  const s = stats(samples);
  assert.deepEqual({ n: s.n, min: s.min, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max }, { n: 100, min: 1, p50: 50, p90: 90, p99: 99, max: 100 });
});

test('few samples: every percentile is a sample, p99 of 10 is the largest', () => {
  const s = stats([3, 1, 2, 10, 4, 5, 6, 7, 8, 9]);
  assert.equal(s.p50, 5);
  assert.equal(s.p90, 9);
  assert.equal(s.p99, 10);
  assert.equal(stats([7]).p99, 7);
  assert.ok(Number.isNaN(stats([]).p50));
});
