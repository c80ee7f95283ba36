/**
 * The proxy's thread count flag (`hangar proxy --threads`, `hangar up --proxy-threads`), small on
 * its own so `hangar up` can check it before starting anything without loading the proxy.
 * @module
 */

import { availableParallelism } from 'node:os';

/** Most event loops a proxy runs (one per core is the useful number). */
export const MAX_PROXY_THREADS = 16;

/**
 * `hangar proxy`'s thread count without the flag: two where the host has two cores or more. Two
 * loops beat one in every paired bench run on a 2-vCPU box (docs/proxy.md, Threads); more cost
 * ~16 MB RSS each and are the operator's choice.
 */
export function defaultProxyThreads(cpus = availableParallelism()): number {
  return Math.max(1, Math.min(2, cpus));
}

/** The number of threads `value` names; throws a message naming the flag, the value and the range. */
export function parseThreads(flag: string, value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!(n >= 1 && n <= MAX_PROXY_THREADS)) {
    throw new Error(`--${flag}: expected a whole number of threads from 1 to ${MAX_PROXY_THREADS} (at most one per core the proxy may use), got ${JSON.stringify(value)}`);
  }
  return n;
}
