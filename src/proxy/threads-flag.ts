/**
 * The proxy's thread count flag (`hangar proxy --threads`, `hangar up --proxy-threads`), small on
 * its own so `hangar up` can check it before starting anything without loading the proxy.
 * @module
 */

/** Most event loops a proxy runs (one per core is the useful number). */
export const MAX_PROXY_THREADS = 16;

/** The number of threads `value` names; throws a message naming the flag, the value and the range. */
export function parseThreads(flag: string, value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!(n >= 1 && n <= MAX_PROXY_THREADS)) {
    throw new Error(`--${flag}: expected a whole number of threads from 1 to ${MAX_PROXY_THREADS} (at most one per core the proxy may use), got ${JSON.stringify(value)}`);
  }
  return n;
}
