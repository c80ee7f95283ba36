/** Summaries of latency samples, one definition for every bench. @module */

/** The median (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Summary of samples. Percentiles are nearest-rank: pN is the smallest sample with at least N% of
 * the samples at or below it (of 100 samples, p99 is the 99th smallest; the maximum is reported
 * beside it). Until 2026-11-22 the index was off by one rank (p99 of 100 samples was the maximum).
 */
export function stats(samples: number[]) {
  if (samples.length === 0) return { n: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, min: r(s[0]!), p50: r(q(0.5)), p90: r(q(0.9)), p99: r(q(0.99)), max: r(s.at(-1)!), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}
