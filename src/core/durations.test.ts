import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDuration, parseDuration } from './durations.js';

describe('parseDuration', () => {
  test('reads Go duration strings into milliseconds', () => {
    const cases: [string, number][] = [
      ['15s', 15_000], ['1m30s', 90_000], ['500ms', 500], ['1.5s', 1500], ['2h', 7_200_000], ['1h2m3s', 3_723_000],
      ['0', 0], ['0s', 0], ['10m', 600_000], ['1500us', 1.5], ['1500µs', 1.5], ['2000000ns', 2], ['1s500ms', 1500],
      [' 5s ', 5000],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  test('reads numbers as nanoseconds', () => {
    assert.equal(parseDuration(5_000_000_000), 5000);
    assert.equal(parseDuration(1_000_000), 1);
    assert.equal(parseDuration(0), 0);
    assert.equal(parseDuration(500), 0.0005);
  });

  test('refuses what is not a duration', () => {
    for (const value of ['', '10', '5x', 's', '1m 30s', '-5s', '1.s', '.5s', 'abc', '10s!', '1d', -1, Number.NaN, Infinity, null, undefined, true, {}, ['5s']]) {
      assert.equal(parseDuration(value), undefined, JSON.stringify(value) ?? String(value));
    }
  });
});

describe('formatDuration', () => {
  test('writes Go duration strings', () => {
    const cases: [number, string][] = [
      [0, '0s'], [500, '500ms'], [1000, '1s'], [15_000, '15s'], [90_000, '1m30s'], [60_000, '1m'], [3_600_000, '1h'],
      [3_723_000, '1h2m3s'], [3_603_000, '1h3s'], [1499, '1s'], [1500, '2s'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  });

  test('round-trips whole seconds through parseDuration', () => {
    for (const ms of [1000, 15_000, 90_000, 3_723_000, 86_400_000]) assert.equal(parseDuration(formatDuration(ms)), ms);
  });
});
