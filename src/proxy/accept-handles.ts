/**
 * More accepts per event-loop iteration for a listening socket, when they are needed. libuv (1.46,
 * Node 20) accepts one connection per readable event of a listening handle and then returns to the
 * loop, so with a thousand busy connections (an iteration of tens of ms) a burst of new connections
 * drains from the accept queue at ~60 per second and the last ones time out. Every extra handle on
 * the same socket is one more accept per iteration.
 *
 * Each copy is a new descriptor of the same socket (listener-copies.ts) and becomes a `net.Server`
 * here that feeds the same connection handler. The kernel keeps one accept queue; nothing else
 * changes.
 *
 * Extra handles are not free: every new connection wakes all of them and all but one accept fails
 * with EAGAIN (measured: one connection at a time with `Connection: close` cost ~400 → ~430–730 µs
 * per request with 15 copies). So they are added only while many connections are open (the case
 * where loop iterations are long) and closed again when it is calm.
 * @module
 */
import type { Server, Socket } from 'node:net';
import { copiesOfListener, serverOnCopy } from './listener-copies.js';

export interface AcceptBoosterOptions {
  /** Extra handles while boosted (0..64). */
  copies: number;
  /** The socket's accept queue length; re-applied on every copy. */
  backlog: number;
  onConnection: (s: Socket) => void;
  /** When given, each copy hands its accepted connections here as raw handles (accept-raw.ts) instead. */
  onHandle?: (clientHandle: unknown) => void;
  /** Helper start-up and each batch of copies must finish within this. Default 10 s. */
  timeoutMs?: number;
}

export class AcceptBooster {
  private copies: Server[] = [];
  private boosting: Promise<void> | undefined;
  /** Ends the helper of a boost in progress (close during a boost). */
  private abort: AbortController | undefined;
  /** When the last boost took effect (relax waits a while after it). */
  boostedAt = 0;

  private readonly timeoutMs: number;

  constructor(private readonly server: Server, private readonly options: AcceptBoosterOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const { copies } = options;
    if (!Number.isInteger(copies) || copies < 0 || copies > 64) throw new Error(`acceptHandles: expected an integer 0..64, got ${copies}`);
  }

  get boosted(): boolean {
    return this.copies.length > 0;
  }

  /** Checks that the server listens; the helper is started by `boost`, when copies are needed. */
  start(): Promise<void> {
    if (this.options.copies === 0) return Promise.resolve();
    if (this.listenFd() === undefined) return Promise.reject(new Error('acceptHandles: could not duplicate the listening socket: the server is not listening'));
    return Promise.resolve();
  }

  /** The listening socket's descriptor (`_handle` is its libuv handle, what node:cluster passes around too). */
  private listenFd(): number | undefined {
    return (this.server as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  }

  /**
   * Adds the extra handles (once; concurrent calls share the request), through a helper started
   * for it and ended right after. Errors are returned, not thrown.
   */
  boost(): Promise<void> {
    if (this.boosted || this.options.copies === 0) return Promise.resolve();
    if (this.boosting) return this.boosting;
    const fd = this.listenFd();
    if (fd === undefined) return Promise.reject(new Error('acceptHandles: could not duplicate the listening socket: the server is not listening'));
    const abort = (this.abort = new AbortController());
    this.boosting = copiesOfListener(fd, this.options.copies, { timeoutMs: this.timeoutMs, signal: abort.signal })
      .then((handles) => Promise.all(handles.map((h) => serverOnCopy(h, this.options.backlog, this.options.onConnection, this.options.onHandle))))
      .then((copies) => {
        this.copies = copies;
        this.boostedAt = Date.now();
      })
      .catch((err: Error) => {
        throw new Error(`acceptHandles: ${err.message}`);
      })
      .finally(() => {
        this.boosting = undefined;
        this.abort = undefined;
      });
    return this.boosting;
  }

  /** Closes the extra handles; the socket stays open through the server's own. */
  relax(): void {
    for (const s of this.copies) s.close();
    this.copies = [];
  }

  handles(): number {
    return 1 + this.copies.length;
  }

  close(): Promise<void> {
    this.abort?.abort();
    const closing = this.copies.map((s) => new Promise<void>((r) => s.close(() => r())));
    this.copies = [];
    return Promise.all(closing).then(() => undefined);
  }
}
