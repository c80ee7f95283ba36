/**
 * More accepts per event-loop iteration for a listening socket, when they are needed. libuv (1.46,
 * Node 20) accepts one connection per readable event of a listening handle and then returns to the
 * loop, so with a thousand busy connections (an iteration of tens of ms) a burst of new connections
 * drains from the accept queue at ~60 per second and the last ones time out. Every extra handle on
 * the same socket is one more accept per iteration.
 *
 * Node 20 has no SO_REUSEPORT and no dup(), but a handle sent over an IPC channel arrives as a new
 * descriptor of the same socket (SCM_RIGHTS). A helper process holds the listening socket and sends
 * it back `copies` times on request; each copy becomes a `net.Server` here that feeds the same
 * connection handler. The kernel keeps one accept queue; nothing else changes.
 *
 * Extra handles are not free: every new connection wakes all of them and all but one accept fails
 * with EAGAIN (measured: one connection at a time with `Connection: close` cost ~400 → ~430–730 µs
 * per request with 15 copies). So they are added only while many connections are open (the case
 * where loop iterations are long) and closed again when it is calm.
 *
 * The helper is a whole Node process (~40 MB RSS), so it lives only while a boost fetches copies:
 * started by `boost`, ended as soon as the copies arrived (they are descriptors of this process
 * then, independent of the helper's).
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { acceptRaw } from './accept-raw.js';

/**
 * The helper: keeps the listening socket as a raw handle and answers each `{ copies }` request by
 * sending it back that many times. Raw handles both ways, never a `net.Server`: a received server
 * is listened at once — in the helper it would accept connections nobody serves, and anywhere it
 * would be re-listened with Node's default backlog (511), shrinking the socket's accept queue. A
 * raw handle is listened only here, with ours. The helper leaves when the channel closes.
 */
const HELPER = `
let server;
let busy = Promise.resolve();
process.on('message', (m, handle) => {
  if (handle) { server = handle; process.send({ ready: true }); return; }
  busy = busy.then(() => new Promise((done) => {
    let left = m.copies;
    const next = () => {
      if (left-- === 0) return done();
      process.send({ copy: true }, server, { keepOpen: true }, next);
    };
    next();
  }));
});
process.on('disconnect', () => process.exit(0));`;

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
  private helper: ChildProcess | undefined;
  private copies: Server[] = [];
  private pending: ((s: Server | Error) => void) | undefined;
  private boosting: Promise<void> | undefined;
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
    if (!(this.server as unknown as { _handle?: unknown })._handle) return Promise.reject(new Error('acceptHandles: could not duplicate the listening socket: the server is not listening'));
    return Promise.resolve();
  }

  /** Starts the helper and hands it the listening socket; resolves once it holds it. */
  private launchHelper(): Promise<ChildProcess> {
    const timeoutMs = this.timeoutMs;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', HELPER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      this.helper = child;
      const timer = setTimeout(() => fail(`no answer from the helper process within ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string) => {
        clearTimeout(timer);
        void this.stopHelper();
        reject(new Error(`could not duplicate the listening socket: ${why}`));
      };
      child.on('error', (err) => fail(err.message));
      child.on('exit', (code, signal) => {
        if (this.helper === child) this.helper = undefined;
        this.pending?.(new Error(`helper exited (${signal ?? `code ${code}`})`));
      });
      child.on('message', (m: { ready?: boolean; copy?: boolean }, handle) => {
        if (m.ready) {
          clearTimeout(timer);
          resolve(child);
        } else if (m.copy && handle) {
          this.adopt(handle);
        }
      });
      // `_handle` is the listening socket's libuv handle (what node:cluster passes around too).
      const raw = (this.server as unknown as { _handle?: unknown })._handle;
      if (!raw) return fail('the server is not listening');
      child.send({}, raw as never, { keepOpen: true });
      // The helper must never keep the proxy alive on its own.
      child.unref();
      (child.channel as { unref?: () => void } | undefined)?.unref?.();
    });
  }

  private adopt(handle: unknown): void {
    const copy = createServer(this.options.onConnection);
    // listen() on the already-listening socket only sets the backlog again (the helper's is 511).
    copy.listen(handle as never, this.options.backlog, () => {
      // onHandle is given only where raw accept worked on the main listener (create-proxy.ts).
      if (this.options.onHandle) acceptRaw(copy, this.options.onHandle);
      this.pending?.(copy);
    });
  }

  /**
   * Adds the extra handles (once; concurrent calls share the request), through a helper started
   * for it and ended right after. Errors are returned, not thrown.
   */
  boost(): Promise<void> {
    if (this.boosted || this.options.copies === 0) return Promise.resolve();
    if (this.boosting) return this.boosting;
    this.boosting = this.launchHelper()
      .then((helper) => this.fetchCopies(helper))
      .catch((err: Error) => {
        throw new Error(`acceptHandles: ${err.message}`);
      })
      .finally(() => {
        this.boosting = undefined;
        void this.stopHelper();
      });
    return this.boosting;
  }

  private fetchCopies(helper: ChildProcess): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const got: Server[] = [];
      const timer = setTimeout(() => finish(new Error(`the helper sent ${got.length} of ${this.options.copies} copies in ${this.timeoutMs} ms`)), this.timeoutMs);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.pending = undefined;
        if (err) {
          for (const s of got) s.close();
          return reject(err);
        }
        this.copies = got;
        this.boostedAt = Date.now();
        resolve();
      };
      this.pending = (s) => {
        if (s instanceof Error) return finish(s);
        got.push(s);
        if (got.length === this.options.copies) finish();
      };
      helper.send({ copies: this.options.copies });
    });
  }

  /** Closes the extra handles; the socket stays open through the server's own. */
  relax(): void {
    for (const s of this.copies) s.close();
    this.copies = [];
  }

  handles(): number {
    return 1 + this.copies.length;
  }

  /** Ends the helper; resolves once it has exited (its descriptor of the socket is gone then). */
  private stopHelper(): Promise<void> {
    const helper = this.helper;
    this.helper = undefined;
    if (!helper || helper.exitCode !== null || helper.signalCode !== null) return Promise.resolve();
    // Referenced again so that waiting for its exit keeps the loop alive.
    helper.ref();
    const exited = new Promise<void>((r) => helper.once('exit', () => r()));
    if (helper.connected) helper.disconnect();
    helper.kill('SIGTERM');
    return exited;
  }

  close(): Promise<void> {
    const closing = this.copies.map((s) => new Promise<void>((r) => s.close(() => r())));
    this.copies = [];
    return Promise.all([...closing, this.stopHelper()]).then(() => undefined);
  }
}
