/**
 * `GET /agent/v1/events?after=SEQ`: NDJSON, one `AgentEvent` per line. It first replays the stored
 * changes with `seq > after` (from the database, in pages), then follows live ones, with a
 * `{"heartbeat":SEQ}` line every `heartbeatMs` so idle connections stay open through proxies and
 * the follower learns the current seq. Without `after` it starts at the current seq (live only).
 *
 * Ordering without gaps or duplicates: better-sqlite3 is synchronous and the hub publishes right
 * after each commit, so subscribing and reading "what is stored up to now" in the same tick splits
 * the changes exactly. Live changes that arrive while the replay is still being written are queued
 * and sent after it; a follower that lets more than `maxQueued` pile up is disconnected (it
 * resumes with `after=<last seq it saw>`), so a stuck reader cannot grow memory without bound.
 *
 * If `after` is older than what is kept (the log keeps the last 10,000 changes), the stream replays
 * what is kept; a follower that was away that long should re-list the machines.
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { AgentEvent } from '../../api-types/agent.js';
import type { EventHub } from '../machines/event-hub.js';
import type { AgentDb } from '../store/agent-db.js';

export interface EventStreamOptions {
  db: AgentDb;
  hub: EventHub;
  heartbeatMs: number;
  maxQueued?: number;
}

/** Open streams, so `close()` can end them all on shutdown. */
export class EventStreams {
  private readonly open = new Set<() => void>();

  constructor(private readonly options: EventStreamOptions) {}

  serve(res: ServerResponse, after: number | undefined): void {
    const { db, hub, heartbeatMs } = this.options;
    const maxQueued = this.options.maxQueued ?? 10_000;
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.flushHeaders();

    // An `after` beyond what this agent ever wrote (its data dir was reset) replays everything kept.
    let sentSeq = after === undefined || after > db.lastSeq() ? (after === undefined ? db.lastSeq() : 0) : after;
    let replayThrough = db.lastSeq();
    const queue: AgentEvent[] = [];
    let writing = false;
    let ended = false;

    const end = () => {
      if (ended) return;
      ended = true;
      unsubscribe();
      clearInterval(heartbeat);
      this.open.delete(end);
      res.end();
    };
    const write = (line: unknown): Promise<void> => {
      if (ended) return Promise.resolve();
      const ok = res.write(`${JSON.stringify(line)}\n`);
      return ok ? Promise.resolve() : new Promise((resolve) => res.once('drain', resolve));
    };
    const pump = async () => {
      if (writing) return;
      writing = true;
      try {
        // Replay stored changes in pages until caught up with what was stored at subscribe time.
        while (!ended && sentSeq < replayThrough) {
          const page = db.eventsAfter(sentSeq, 500).filter((e) => e.seq <= replayThrough);
          if (page.length === 0) break;
          for (const event of page) {
            await write(event);
            sentSeq = event.seq;
          }
        }
        replayThrough = 0;
        while (!ended && queue.length > 0) {
          const event = queue.shift()!;
          if (event.seq <= sentSeq) continue;
          await write(event);
          sentSeq = event.seq;
        }
      } catch {
        end();
      } finally {
        writing = false;
      }
    };

    const unsubscribe = hub.subscribe((event) => {
      if (ended) return;
      if (queue.length >= maxQueued) {
        end();
        return;
      }
      queue.push(event);
      void pump();
    });
    replayThrough = db.lastSeq();
    const heartbeat = setInterval(() => {
      if (!writing && queue.length === 0) void write({ heartbeat: sentSeq });
    }, heartbeatMs);
    res.on('close', end);
    res.on('error', end);
    this.open.add(end);
    void pump();
  }

  /** Ends every open stream (shutdown). */
  closeAll(): void {
    for (const end of [...this.open]) end();
  }

  get size(): number {
    return this.open.size;
  }
}
