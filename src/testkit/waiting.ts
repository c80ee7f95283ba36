/**
 * Polling for a condition in tests, bounded in time.
 * @module
 */

/**
 * Polls `probe` every `intervalMs` until it answers something other than undefined or false, and
 * answers that; throws "timed out waiting for WHAT" after `ms`.
 */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
