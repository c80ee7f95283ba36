/**
 * Follows `GET /v1/watch/routes` and feeds every event to the pool; reconnects with backoff and
 * starts over from the new snapshot; a stream silent for longer than three heartbeats is dropped.
 * @module
 */
import type { RouteEvent } from '../api-types/watch.js';
import { parseNdjson } from '../core/ndjson.js';
import type { Logger } from '../core/logger.js';

const SILENCE_MS = 45_000;

export function followRoutes(o: {
  apiUrl: string;
  token: string;
  logger: Logger;
  onEvent: (e: RouteEvent) => void;
}): { ready: Promise<void>; close(): void } {
  let stopped = false;
  let current: AbortController | undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const url = `${o.apiUrl.replace(/\/+$/, '').replace(/\/v1$/, '')}/v1/watch/routes`;
  void (async () => {
    let delay = 100;
    while (!stopped) {
      const abort = (current = new AbortController());
      let watchdog: NodeJS.Timeout | undefined;
      const pet = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
      };
      try {
        pet();
        const res = await fetch(url, { headers: { authorization: `Bearer ${o.token}`, accept: 'application/x-ndjson' }, signal: abort.signal });
        if (!res.ok || !res.body) throw new Error(`route watch answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
        for await (const event of parseNdjson<RouteEvent>(res.body as unknown as AsyncIterable<Uint8Array>)) {
          pet();
          o.onEvent(event);
          if (event.type === 'snapshot') {
            delay = 100;
            resolveReady();
          }
        }
        if (!stopped) o.logger.warn('proxy: route watch stream ended; reconnecting');
      } catch (err) {
        if (!stopped) o.logger.warn('proxy: route watch failed; reconnecting', { error: (err as Error).message, retry_ms: delay });
      } finally {
        clearTimeout(watchdog);
      }
      if (stopped) break;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  })();
  return {
    ready,
    close() {
      stopped = true;
      current?.abort();
    },
  };
}
