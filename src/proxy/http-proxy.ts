/**
 * The HTTP handler: one `ClientConn` per client connection (plain or TLS), a hand-rolled HTTP/1.1
 * forwarder (http-codec.ts) over pooled keep-alive connections to machines. Node's http server and
 * client cost about three times what the bytes do (field-numbers §5.2), so the proxy parses only
 * the heads and passes bodies through, framed but uncopied. Requests are routed by
 * `Host: <app>.<domain>`; headers follow Fly's (X-Forwarded-*, Fly-Client-IP, Fly-Request-Id,
 * Fly-Region, Via); WebSocket upgrades become byte pipes; `fly-replay` answers replay the request.
 * Every way a client or machine can misbehave ends that one exchange, never the proxy.
 * @module
 */
import { connect, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { RouteMachine } from '../api-types/watch.js';
import type { Logger } from '../core/logger.js';
import { BodyFramer, CONNECTION_CLOSE, CONNECTION_KEEP_ALIVE, CONNECTION_NAMES_HEADERS, CONNECTION_UPGRADE, connectionHeaderNames, connectionTokens, headEnd, headerValue, HttpParseError, parseResponseHead, requestTarget, RESPONSE_DROP, Rq, scannedFraming, scannedRequestFraming, scanRequestHead, scanResponseHead, type Head, type RequestScan, type ResponseScan } from './http-codec.js';
import { labelKey, type Cell, type ProxyMetrics } from './metrics.js';
import { ProxyError, type AcquireOptions, type Lease, type MachinePool } from './pool.js';
import { parseFlyReplay, replaySource } from './replay.js';
import { RequestIds } from './request-ids.js';
import { appFromHost, httpService, type ListenerKind } from './route-table.js';

/** The timeouts a proxy's owner may set (the rest of HttpProxyOptions are tuning with defaults). */
export interface HttpTimeouts {
  /** A client must send a whole request head within this (slowloris). Default 10 s. */
  headTimeoutMs?: number;
  /** Idle keep-alive client connections close after this. Default 60 s. */
  idleTimeoutMs?: number;
  /** A machine must answer with a response head within this. Default 60 s. */
  upstreamTimeoutMs?: number;
}

export interface HttpProxyOptions extends HttpTimeouts {
  pool: MachinePool;
  domain: string;
  region: string;
  logger: Logger;
  metrics: ProxyMetrics;
  /** Idle pooled machine connections close after this (Fly pools ~4 s). Default 4 s. */
  upstreamIdleMs?: number;
  maxHeadBytes?: number;
  maxHeaders?: number;
  /** Port of the HTTPS listener, for force_https redirects (omitted from the URL when 443). */
  httpsPort?: () => number | undefined;
  /** Bodies up to this size are kept so a `fly-replay` answer can replay them. Default 1 MiB. */
  maxReplayBodyBytes?: number;
}

// Which request headers are hop-by-hop or set by the proxy: REQUEST_NAMES in http-codec.ts.
const MAX_REPLAYS = 3;
const MAX_RESPONSE_HEAD = 64 * 1024;
/** Response bodies up to this size that arrive with the head are copied behind it into one write. */
const SMALL_BODY = 16 * 1024;

const HTTP11 = Buffer.from(' HTTP/1.1\r\n');

/**
 * Copies src[from, to) to dst at `at`; answers the count. Short runs (header lines) by a loop:
 * `Buffer#copy` makes a typed-array view per call, which costs more than the bytes.
 */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n > 64) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!;
  return n;
}

/** Writes `part` (bytes, or a latin1 string) into `dst` at `at`; answers the count. */
function put(dst: Buffer, at: number, part: Buffer | string): number {
  if (typeof part === 'string') return dst.write(part, at, 'latin1');
  if (part.length <= 64) return copyBytes(part, 0, part.length, dst, at);
  dst.set(part, at);
  return part.length;
}

/** `head` (ending in CRLFCRLF) with one more header line before its end. */
function withLine(head: Buffer, line: string): Buffer {
  return Buffer.concat([head.subarray(0, head.length - 2), Buffer.from(`${line}\r\n\r\n`, 'latin1')]);
}

/** `HTTP/1.1 <status> ` per status code, made once. */
const STATUS_PREFIX: Buffer[] = [];
/** What follows the request id in a forwarded head when there is no Via or Connection to add. */
const PLAIN_TAIL_TEXT = '\r\nvia: 1.1 hangar\r\n\r\n';
const PLAIN_TAIL = Buffer.from(PLAIN_TAIL_TEXT, 'latin1');

/**
 * The end of a forwarded head after the request id: our Via hop (after the one received), `extra`
 * header lines, the blank line. The common end (nothing to add) is bytes made once.
 */
function headTail(via: string | undefined, extra: string): Buffer | string {
  return via || extra ? `\r\nvia: ${via ? `${via}, ` : ''}1.1 hangar\r\n${extra}\r\n` : PLAIN_TAIL;
}
const REQUEST_ID_LINE = Buffer.from('fly-request-id: ', 'latin1');

const STATUS_TEXT: Record<number, string> = {
  301: 'Moved Permanently', 400: 'Bad Request', 404: 'Not Found', 408: 'Request Timeout', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/**
 * One buffer that every machine connection reads into (`onread`): no allocation and no stream
 * bookkeeping per read. Its bytes are valid only during the callback, so whatever outlives it
 * (a partial head, a body chunk handed to `write`) is copied with `own`; the common small response
 * is copied behind its head anyway.
 */
const UPSTREAM_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
/**
 * The same for plain client connections (accepted as raw handles, `adopt`): Node's default read
 * path mallocs 64 KiB, shrinks it and wraps it in a new ArrayBuffer per read. TLS sockets keep
 * the default path (`'data'` events of owned buffers).
 */
const CLIENT_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const own = (view: Buffer): Buffer => Buffer.from(view);

class Upstream {
  owner: ClientConn | undefined;
  destroyed = false;
  /** When this pooled (idle) connection expires; checked by the proxy's sweeper. */
  idleUntil = Infinity;
  readonly socket: Socket;
  constructor(readonly key: string, host: string, port: number, private readonly proxy: HttpProxy) {
    this.socket = connect({
      host, port,
      onread: {
        buffer: UPSTREAM_READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          proxy.tick();
          if (this.owner) this.owner.onUpstreamData(this, (buf as Buffer).subarray(0, n));
          else this.destroy(); // bytes on an idle connection: the machine is confused
          return true;
        },
      },
    });
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      proxy.tick();
      this.destroyed = true;
      this.proxy.forget(this);
      this.owner?.onUpstreamClose(this, 'the machine closed the connection');
    });
  }
  destroy(): void {
    this.destroyed = true;
    this.socket.destroy();
  }
}

const NO_HINTS: AcquireOptions = Object.freeze({});
const ACTIVE_HTTP = labelKey({ kind: 'http' });
const ACTIVE_HTTPS = labelKey({ kind: 'https' });
const selectHttp = (m: RouteMachine) => httpService(m, 'http');
const selectHttps = (m: RouteMachine) => httpService(m, 'https');

class ClientConn {
  phase: 'head' | 'routing' | 'exchange' | 'upgraded' | 'closed' = 'head';
  /** When the current phase times out (checked by the proxy's sweeper). */
  deadline: number;
  timeoutStatus = 0;
  private buf: Buffer | null = null;
  private readonly clientIp: string;
  private readonly localPort: number;
  /** The forwarding headers that are the same for every request on this connection. */
  private readonly forwarded: string;
  /** `x-forwarded-for: <client>` (no earlier proxies), the forwarded lines, then `fly-request-id: `. */
  private readonly forwardedPrefix: Buffer;
  /** The current request's Fly-Request-Id (`hasId`), as bytes; `requestId` makes its string. */
  private readonly idBytes: Buffer;
  private hasId = false;
  // the exchange in progress
  private req: RequestScan | undefined;
  /** The request head for the machine (built once per request; a retry or replay sends it again). */
  private upHead: Buffer | undefined;
  private app = '';
  private startedAt = 0;
  private keepAlive = true;
  /** This request's framer, and the one `resFramer` points at: one per direction for the connection's life. */
  private readonly requestFramer = new BodyFramer();
  private readonly responseFramer = new BodyFramer();
  private reqBodyDone = true;
  private retained: Buffer[] | null = null;
  private retainedBytes = 0;
  private lease: Lease | undefined;
  private up: Upstream | undefined;
  private upReused = false;
  private resBuf: Buffer | null = null;
  private resFramer: BodyFramer | undefined;
  private resHeadSent = false;
  private upstreamClose = false;
  private upgrade = false;
  private replays = 0;
  private replaySrc: string | undefined;
  private hints: AcquireOptions = {};

  /**
   * @param borrowed the socket reads into CLIENT_READ_BUFFER (`onRead`): every byte kept past a
   * read, or handed to a write that may be queued, is copied first.
   */
  constructor(readonly socket: Socket, readonly kind: ListenerKind, private readonly proxy: HttpProxy, listenerPort: number | undefined, private readonly borrowed = false) {
    this.clientIp = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    // The listener's port when known: saves a getsockname per connection.
    this.localPort = listenerPort ?? socket.localPort ?? 0;
    const https = kind === 'https';
    this.forwarded =
      `x-forwarded-proto: ${https ? 'https' : 'http'}\r\nx-forwarded-ssl: ${https ? 'on' : 'off'}\r\n` +
      `x-forwarded-port: ${this.localPort}\r\nfly-forwarded-port: ${this.localPort}\r\n` +
      `fly-client-ip: ${this.clientIp}\r\nfly-region: ${proxy.region}\r\n`;
    this.forwardedPrefix = Buffer.from(`x-forwarded-for: ${this.clientIp}\r\n${this.forwarded}fly-request-id: `, 'latin1');
    this.idBytes = Buffer.allocUnsafe(proxy.ids.length);
    this.deadline = proxy.tick() + proxy.headTimeoutMs;
    this.timeoutStatus = 0; // a connection that never sends anything just closes
    socket.setNoDelay(true);
    if (!borrowed) {
      socket.on('data', (d: Buffer) => {
        proxy.tick();
        this.onData(d);
      });
    }
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose());
  }

  private get requestId(): string {
    return this.hasId ? this.idBytes.toString('latin1') : '';
  }

  private newRequestId(): void {
    this.proxy.ids.next(this.idBytes);
    this.hasId = true;
  }

  /** Bytes read into the shared client buffer: valid only during this call. */
  onRead(view: Buffer): void {
    this.onData(view);
    // A partial head or pipelined bytes kept as a view of the shared buffer: copy them now.
    if (this.buf !== null && this.buf.buffer === view.buffer) this.buf = own(this.buf);
  }

  private onData(d: Buffer): void {
    switch (this.phase) {
      case 'head':
        this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
        if (this.timeoutStatus === 0) {
          // First bytes of a request: the whole head must follow within the head timeout.
          this.deadline = this.proxy.now + this.proxy.headTimeoutMs;
          this.timeoutStatus = 408;
        }
        this.tryHead();
        return;
      case 'exchange':
        if (!this.reqBodyDone) return this.forwardBody(d);
        break;
      case 'upgraded':
        if (this.up && !this.up.socket.write(this.borrowed ? own(d) : d)) this.backpressure(this.socket, this.up.socket);
        return;
      default:
        break;
    }
    // Pipelined bytes while a response is pending: keep them for later, stop reading.
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    this.socket.pause();
  }

  private backpressure(source: Socket, sink: Socket): void {
    source.pause();
    sink.once('drain', () => {
      if (this.phase !== 'closed') source.resume();
    });
  }

  private tryHead(): void {
    let buf = this.buf!;
    // Tolerate empty lines before a request (RFC 9112 §2.2).
    let start = 0;
    while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
    if (start > 0) buf = this.buf = buf.subarray(start);
    const end = headEnd(buf);
    if (end < 0) {
      if (buf.length > this.proxy.maxHeadBytes) this.fail(431, `request head larger than ${this.proxy.maxHeadBytes} bytes`);
      return;
    }
    if (end > this.proxy.maxHeadBytes) return this.fail(431, `request head larger than ${this.proxy.maxHeadBytes} bytes`);
    this.buf = end + 4 < buf.length ? buf.subarray(end + 4) : null; // pipelined bytes (rare)
    let head: RequestScan;
    try {
      head = scanRequestHead(buf, end, this.proxy.maxHeaders);
    } catch (err) {
      return this.fail((err as HttpParseError).status ?? 400, (err as Error).message);
    }
    this.startRequest(head, buf);
  }

  /** Answers an unparseable request and closes: the stream cannot be trusted after it. */
  private fail(status: number, message: string): void {
    // A head that never became a request: its latency is counted from now, not from the last one.
    if (this.phase === 'head') this.startedAt = this.proxy.now;
    this.keepAlive = false;
    this.reqBodyDone = false;
    if (!this.hasId) this.newRequestId();
    this.respond(status, `hangar proxy: ${message}\n`);
  }

  /** `buf` holds the head `h` was scanned from (maybe a view of a shared read buffer: used only now). */
  private startRequest(h: RequestScan, buf: Buffer): void {
    this.phase = 'routing';
    this.deadline = Infinity;
    // No pause here: bytes that arrive before the exchange wants them are kept by onData, which
    // pauses then (a pause/resume pair per request costs a tick and stream bookkeeping).
    this.req = h;
    this.upHead = undefined;
    this.startedAt = this.proxy.now;
    this.newRequestId();
    this.resHeadSent = false;
    this.replays = 0;
    this.replaySrc = undefined;
    const connection = h.connection;
    const host = h.host;
    const tokens = connection === '' ? 0 : connectionTokens(connection);
    this.keepAlive = h.minor === 1 ? (tokens & CONNECTION_CLOSE) === 0 : (tokens & CONNECTION_KEEP_ALIVE) !== 0;
    try {
      this.requestFramer.reset(scannedRequestFraming(h));
    } catch (err) {
      return this.fail((err as HttpParseError).status, (err as Error).message);
    }
    this.reqBodyDone = this.requestFramer.done;
    this.retained = [];
    this.retainedBytes = 0;
    if (host === undefined) return this.fail(400, 'missing Host header');
    const app = this.proxy.appFor(host);
    if (!app) return this.respond(404, `hangar proxy: no app answers for host "${host}"; apps are reached as <app>.${this.proxy.domain}\n`);
    const pool = this.proxy.pool;
    if (!pool.table.hasApp(app)) {
      if (pool.table.knows(app)) {
        this.app = app;
        return this.respond(503, `hangar proxy: app "${app}" has no machines\n`);
      }
      return this.respond(404, `hangar proxy: app "${app}" not found (looked for it because of Host "${host}"; no machine of that app is known)\n`);
    }
    this.app = app;
    if (this.kind === 'http') {
      if (pool.forceHttps(app)) {
        const name = host.replace(/:\d+$/, '');
        const port = this.proxy.httpsPort();
        const target = requestTarget(h, buf);
        const location = `https://${name}${port && port !== 443 ? `:${port}` : ''}${target.startsWith('/') ? target : '/'}`;
        return this.respond(301, `hangar proxy: ${location}\n`, [`location: ${location}`]);
      }
    }
    this.upgrade = h.upgrade !== undefined && (tokens & CONNECTION_UPGRADE) !== 0;
    const force = h.forceInstance;
    const prefer = h.preferRegion;
    this.hints = force || prefer
      ? {
          ...(force ? { instance: force } : {}),
          ...(prefer ? { preferRegions: prefer.split(',').map((r) => r.trim()).filter(Boolean) } : {}),
        }
      : NO_HINTS;
    this.upHead = this.upstreamHead(h, buf, tokens);
    this.route(app, this.hints);
  }

  private route(app: string, hints: AcquireOptions): void {
    this.phase = 'routing';
    const pool = this.proxy.pool;
    const select = this.kind === 'https' ? selectHttps : selectHttp;
    const now = pool.tryAcquire(app, select, hints);
    if (now) {
      this.lease = now;
      return this.send(false);
    }
    pool.acquire(app, select, hints).then(
      (lease) => {
        this.proxy.tick();
        if (this.phase === 'closed') return lease.release();
        this.lease = lease;
        this.send(false);
      },
      (err: unknown) => {
        this.proxy.tick();
        if (this.phase === 'closed') return;
        const status = err instanceof ProxyError ? err.status : 502;
        if (status >= 500) this.proxy.logger.warn('proxy: request not served', { app, request_id: this.requestId, error: (err as Error).message });
        this.respond(status, `hangar proxy: ${(err as Error).message}\n`);
      },
    );
  }

  /** Sends the request head (and what is known of the body) to the leased machine. */
  private send(fresh: boolean): void {
    const lease = this.lease!;
    const key = lease.key;
    let up = fresh ? undefined : this.proxy.takeIdle(key);
    this.upReused = up !== undefined;
    if (!up) up = new Upstream(key, lease.host, lease.port, this.proxy);
    up.owner = this;
    this.up = up;
    this.resBuf = null;
    this.resFramer = undefined;
    this.upstreamClose = false;
    this.phase = 'exchange';
    this.deadline = this.proxy.now + this.proxy.upstreamTimeoutMs;
    this.timeoutStatus = 504;
    const head = this.upHead!;
    up.socket.write(this.replaySrc ? withLine(head, `fly-replay-src: ${this.replaySrc}`) : head);
    if (this.retained && (this.replays > 0 || fresh) && this.reqBodyDone) {
      for (const b of this.retained) up.socket.write(b);
      return;
    }
    if (this.buf && !this.reqBodyDone) {
      const b = this.buf;
      this.buf = null;
      this.forwardBody(b);
    }
    if (!this.reqBodyDone && this.phase === 'exchange') this.socket.resume();
  }

  /**
   * The head for the machine: the request line as HTTP/1.1, the client's header lines copied as
   * they are except hop-by-hop ones (and those its Connection header names) and the forwarding
   * headers the proxy sets itself, then ours. One new buffer: it outlives the read it came from.
   */
  private upstreamHead(h: RequestScan, buf: Buffer, tokens: number): Buffer {
    // Tokens of Connection other than the usual ones name more hop-by-hop headers (rare).
    const named = (tokens & CONNECTION_NAMES_HEADERS) !== 0 ? connectionHeaderNames(h.connection) : undefined;
    const { lines, kinds } = h;
    const keep: boolean[] = [];
    let kept = 0;
    for (let i = 0, l = 0; l < lines.length; i++, l += 3) {
      const k = kinds[i]!;
      let ok = k === Rq.Other || k === Rq.Host || k === Rq.ForceInstance || k === Rq.PreferRegion || k === Rq.TransferEncoding || k === Rq.ContentLength;
      if (ok && named && named.includes(buf.toString('latin1', lines[l]!, lines[l + 1]!).toLowerCase())) ok = false;
      keep.push(ok);
      if (ok) kept += lines[l + 2]! + 2 - lines[l]!;
    }
    // Ours follow: forwarding lines, the request id, Via (and the upgrade's lines). The common
    // request (no X-Forwarded-For, Via or upgrade) takes them from bytes made once.
    const xff = h.forwardedFor;
    const via = h.via;
    const before = xff ? `x-forwarded-for: ${xff}, ${this.clientIp}\r\n${this.forwarded}fly-request-id: ` : this.forwardedPrefix;
    const after = headTail(via, this.upgrade ? `connection: upgrade\r\nupgrade: ${h.upgrade}\r\n` : '');
    const out = Buffer.allocUnsafe(h.targetEnd + HTTP11.length + kept + before.length + this.idBytes.length + after.length);
    // Copied in runs: the request line with the kept lines after it when it is already HTTP/1.1,
    // and adjacent kept lines together.
    let at = 0;
    let from = 0;
    let to = h.targetEnd;
    if (h.minor !== 1) {
      at = copyBytes(buf, 0, h.targetEnd, out, 0);
      at += copyBytes(HTTP11, 0, HTTP11.length, out, at);
      from = to = lines.length > 0 ? lines[0]! : 0;
    } else to = h.targetEnd + HTTP11.length;
    for (let i = 0, l = 0; l < lines.length; i++, l += 3) {
      if (!keep[i]) continue;
      if (lines[l] !== to) {
        at += copyBytes(buf, from, to, out, at);
        from = lines[l]!;
      }
      to = lines[l + 2]! + 2;
    }
    at += copyBytes(buf, from, to, out, at);
    at += put(out, at, before);
    at += copyBytes(this.idBytes, 0, this.idBytes.length, out, at);
    put(out, at, after);
    return out;
  }

  private forwardBody(d: Buffer): void {
    let n: number;
    try {
      n = this.requestFramer.feed(d);
    } catch (err) {
      this.up?.destroy();
      return this.fail((err as HttpParseError).status ?? 400, (err as Error).message);
    }
    const view = n === d.length ? d : d.subarray(0, n);
    // Written (and maybe queued) and retained for a replay: must not be a view of a shared buffer.
    const part = this.borrowed && n > 0 ? own(view) : view;
    if (this.retained) {
      this.retainedBytes += part.length;
      if (this.retainedBytes <= this.proxy.maxReplayBodyBytes) this.retained.push(part);
      else this.retained = null;
    }
    if (n > 0 && this.up && !this.up.socket.write(part)) this.backpressure(this.socket, this.up.socket);
    if (this.requestFramer.done) {
      this.reqBodyDone = true;
      if (n < d.length) this.buf = this.buf ? Buffer.concat([this.buf, d.subarray(n)]) : d.subarray(n);
      this.socket.pause();
    }
  }

  /** `d` is a view of the shared read buffer: copy (`own`) whatever must outlive this call. */
  onUpstreamData(up: Upstream, d: Buffer): void {
    if (up !== this.up) return up.destroy();
    if (this.phase === 'upgraded') {
      if (!this.socket.write(own(d))) this.backpressure(up.socket, this.socket);
      return;
    }
    if (this.phase !== 'exchange') return up.destroy();
    if (this.resFramer) return this.forwardResponse(d);
    // resBuf also marks "the machine has answered something" (no retry on a fresh connection then).
    const buf = (this.resBuf = this.resBuf ? Buffer.concat([this.resBuf, d]) : d);
    const end = headEnd(buf);
    if (end < 0) {
      if (buf === d) this.resBuf = own(d);
      if (buf.length > MAX_RESPONSE_HEAD) this.upstreamFailed(`response head larger than ${MAX_RESPONSE_HEAD} bytes`);
      return;
    }
    let scan: ResponseScan;
    try {
      scan = scanResponseHead(buf, end);
    } catch (err) {
      return this.upstreamFailed((err as Error).message);
    }
    // Interim answers, upgrades and fly-replay take the string path; final responses are copied.
    if (scan.status < 200 || scan.flyReplay) return this.specialResponse(up, buf, end);
    const rest = buf.subarray(end + 4);
    this.resBuf = null;
    const framing = scannedFraming(scan, this.req!.method);
    this.resFramer = this.responseFramer.reset(framing);
    const upTokens = scan.connection === undefined ? 0 : connectionTokens(scan.connection);
    this.upstreamClose = framing.kind === 'close' || (upTokens & CONNECTION_CLOSE) !== 0 || (scan.minor === 0 && (upTokens & CONNECTION_KEEP_ALIVE) === 0);
    if (framing.kind === 'close' || !this.reqBodyDone) this.keepAlive = false;
    this.deadline = Infinity;
    this.timeoutStatus = 0;
    // Head and the body bytes that came with it leave in one write (one syscall, one segment).
    let n = 0;
    if (rest.length > 0) {
      try {
        n = this.resFramer.feed(rest);
      } catch (err) {
        this.socket.write(this.scannedHead(scan, buf, rest, 0));
        return this.upstreamFailed((err as Error).message);
      }
      if (n < rest.length) this.upstreamClose = true; // bytes after the response: do not reuse
    }
    let ok: boolean;
    if (n <= SMALL_BODY) ok = this.socket.write(this.scannedHead(scan, buf, rest, n));
    else {
      this.socket.cork();
      this.socket.write(this.scannedHead(scan, buf, rest, 0));
      ok = this.socket.write(own(rest.subarray(0, n)));
      this.socket.uncork();
    }
    if (!ok) this.backpressure(up.socket, this.socket);
    if (this.resFramer.done) this.finish();
  }

  /**
   * The client's response head from a scanned machine head (its kept header lines copied as they
   * are, ours added) followed by the first `n` bytes of `body`, in one new buffer; marks it sent.
   */
  private scannedHead(scan: ResponseScan, head: Buffer, body: Buffer, n: number): Buffer {
    const prefix = (STATUS_PREFIX[scan.status] ??= Buffer.from(`HTTP/1.1 ${scan.status} `, 'latin1'));
    const via = scan.via;
    const after = headTail(via, this.connectionLine());
    const out = Buffer.allocUnsafe(prefix.length + scan.keptBytes + REQUEST_ID_LINE.length + this.idBytes.length + after.length + n);
    out.set(prefix, 0);
    let at = prefix.length;
    const keep = scan.keep;
    for (let i = 0; i < keep.length; i += 2) at += copyBytes(head, keep[i]!, keep[i + 1]!, out, at);
    at += copyBytes(REQUEST_ID_LINE, 0, REQUEST_ID_LINE.length, out, at);
    at += copyBytes(this.idBytes, 0, this.idBytes.length, out, at);
    at += put(out, at, after);
    if (n > 0) copyBytes(body, 0, n, out, at);
    this.status = scan.status;
    this.resHeadSent = true;
    return out;
  }

  /** What the client's response says of the connection: only a close, or keep-alive to HTTP/1.0. */
  private connectionLine(): string {
    return !this.keepAlive ? 'connection: close\r\n' : this.req!.minor === 0 ? 'connection: keep-alive\r\n' : '';
  }

  /** Interim (1xx), upgrade (101) and fly-replay answers, from the parsed string head. */
  private specialResponse(up: Upstream, buf: Buffer, end: number): void {
    let head: Head;
    try {
      head = parseResponseHead(buf.toString('latin1', 0, end));
    } catch (err) {
      return this.upstreamFailed((err as Error).message);
    }
    const rest = buf.subarray(end + 4);
    this.resBuf = null;
    if (head.status === 101 && this.upgrade) return this.upgraded(head, rest);
    const replay = headerValue(head, 'fly-replay');
    if (head.status >= 100 && head.status < 200) {
      // Interim answers (100 Continue, 103) pass through; the final one follows.
      this.socket.write(`HTTP/1.1 ${head.status} ${head.reason}\r\n\r\n`);
      if (rest.length > 0) this.onUpstreamData(up, rest);
      return;
    }
    if (replay !== undefined) return this.replay(replay);
    // Unreachable: onUpstreamData sends only 1xx and fly-replay answers here.
    this.upstreamFailed('internal error: unexpected response shape');
  }

  private writeResponseHead(head: Head): void {
    this.socket.write(this.responseHead(head), 'latin1');
  }

  /** The response head for the client (hop-by-hop headers dropped, ours added); marks it sent. */
  private responseHead(head: Head): string {
    let via: string | undefined;
    let s = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
    for (let i = 0; i < head.names.length; i++) {
      const n = head.names[i]!;
      if (RESPONSE_DROP.has(n)) {
        if (n === 'via') via = head.values[i];
        continue;
      }
      s += `${n}: ${head.values[i]}\r\n`;
    }
    const tail = headTail(via, this.connectionLine());
    this.status = head.status;
    this.resHeadSent = true;
    return `${s}fly-request-id: ${this.requestId}${typeof tail === 'string' ? tail : PLAIN_TAIL_TEXT}`;
  }

  private status = 0;

  private forwardResponse(d: Buffer): void {
    let n: number;
    try {
      n = this.resFramer!.feed(d);
    } catch (err) {
      return this.upstreamFailed((err as Error).message);
    }
    if (n < d.length) this.upstreamClose = true; // bytes after the response: do not reuse
    if (n > 0 && !this.socket.write(own(d.subarray(0, n)))) this.backpressure(this.up!.socket, this.socket);
    if (this.resFramer!.done) this.finish();
  }

  private upgraded(head: Head, rest: Buffer): void {
    this.writeResponseHead({ ...head, names: [...head.names, 'connection', 'upgrade'], values: [...head.values, 'upgrade', headerValue(head, 'upgrade') ?? 'websocket'] });
    this.phase = 'upgraded';
    this.deadline = Infinity;
    this.timeoutStatus = 0;
    this.record();
    if (rest.length > 0) this.socket.write(own(rest));
    if (this.buf) {
      this.up!.socket.write(this.buf);
      this.buf = null;
    }
    this.socket.resume();
  }

  private replay(value: string): void {
    const lease = this.lease!;
    this.up?.destroy();
    this.up = undefined;
    lease.release();
    this.lease = undefined;
    const target = parseFlyReplay(value);
    if (!target) return this.respond(502, `hangar proxy: machine ${lease.machine.id} answered fly-replay "${value}", which names no target\n`);
    if (this.replays >= MAX_REPLAYS) return this.respond(502, `hangar proxy: request replayed ${MAX_REPLAYS} times; giving up (last fly-replay: "${value}")\n`);
    if (!this.reqBodyDone || !this.retained) {
      return this.respond(502, `hangar proxy: cannot replay a request whose body is larger than ${this.proxy.maxReplayBodyBytes} bytes or still arriving\n`);
    }
    this.replays++;
    this.proxy.metrics.replays.inc();
    this.replaySrc = replaySource({ instance: lease.machine.id, region: lease.machine.region, ...(target.state ? { state: target.state } : {}) }, Math.round(Date.now() * 1000));
    const app = target.app ?? lease.machine.app_name;
    if (!this.proxy.pool.table.hasApp(app)) return this.respond(404, `hangar proxy: fly-replay named app "${app}", which is not found\n`);
    this.app = app;
    this.route(app, {
      ...(target.instance ? { instance: target.instance } : {}),
      ...(target.region ? { region: target.region } : {}),
      ...(target.elsewhere ? { exclude: lease.machine.id } : {}),
    });
  }

  onUpstreamClose(up: Upstream, why: string): void {
    if (up !== this.up) return;
    if (this.phase === 'upgraded') {
      this.socket.end();
      return;
    }
    if (this.phase !== 'exchange') return;
    if (this.resFramer?.framing.kind === 'close') {
      // The end of a close-delimited body.
      this.upstreamClose = true;
      this.keepAlive = false;
      return this.finish();
    }
    this.upstreamFailed(why);
  }

  /** The machine failed mid-exchange: retry a stale pooled connection once, else 502 or cut. */
  private upstreamFailed(why: string): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    if (this.resHeadSent) {
      this.releaseLease();
      this.socket.destroy();
      return;
    }
    if (this.upReused && this.resBuf === null && this.reqBodyDone && this.retained) {
      return this.send(true);
    }
    const m = this.lease?.machine;
    this.respond(502, `hangar proxy: machine ${m?.id ?? '?'} of app "${this.app}" did not answer: ${why}\n`);
  }

  /** The proxy's own answer (errors, redirects); ends the exchange. */
  private respond(status: number, body: string, extra: string[] = []): void {
    if (this.phase === 'closed') return;
    this.up?.destroy();
    this.up = undefined;
    this.releaseLease();
    if (this.resHeadSent) {
      this.socket.destroy();
      return;
    }
    if (!this.reqBodyDone) this.keepAlive = false;
    const len = Buffer.byteLength(body);
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`, 'content-type: text/plain; charset=utf-8', `content-length: ${len}`,
      `fly-request-id: ${this.requestId}`, 'server: hangar-proxy', 'via: 1.1 hangar', ...extra, ...(this.keepAlive ? [] : ['connection: close']),
    ];
    this.status = status;
    this.resHeadSent = true;
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n${this.req?.method === 'HEAD' ? '' : body}`);
    this.phase = 'exchange';
    this.done();
  }

  private releaseLease(): void {
    this.lease?.release();
    this.lease = undefined;
  }

  private record(): void {
    const m = this.proxy.metrics;
    this.proxy.requestsCell(this.app || '-', this.status).n++;
    m.latency.observe((this.proxy.now - this.startedAt) / 1000);
  }

  /** The response is complete: pool the machine connection, then read the next request or close. */
  private finish(): void {
    const up = this.up;
    this.up = undefined;
    if (up) {
      up.owner = undefined;
      if (this.upstreamClose || !this.reqBodyDone || up.destroyed) up.destroy();
      else this.proxy.putIdle(up);
    }
    this.releaseLease();
    this.done();
  }

  private done(): void {
    if (this.phase !== 'upgraded') this.record();
    this.req = undefined;
    this.upHead = undefined;
    this.resFramer = undefined;
    this.retained = null;
    this.app = '';
    if (!this.keepAlive) {
      this.phase = 'closed';
      this.socket.end();
      this.proxy.drop(this);
      return;
    }
    this.phase = 'head';
    this.resHeadSent = false;
    this.hasId = false;
    this.deadline = this.proxy.now + this.proxy.idleTimeoutMs;
    this.timeoutStatus = 0;
    if (this.buf) this.tryHead();
    if (this.phase === 'head' && this.socket.isPaused()) this.socket.resume();
  }

  /** The sweeper found this connection past its deadline. */
  timedOut(): void {
    if (this.phase === 'head' && this.timeoutStatus === 408) return this.fail(408, 'request head not received in time');
    if (this.phase === 'exchange' && this.timeoutStatus === 504) {
      const m = this.lease?.machine;
      this.up?.destroy();
      this.up = undefined;
      this.keepAlive = false;
      this.proxy.logger.warn('proxy: machine did not answer in time', { app: this.app, machine: m?.id, request_id: this.requestId });
      return this.respond(504, `hangar proxy: machine ${m?.id ?? '?'} of app "${this.app}" did not answer within ${this.proxy.upstreamTimeoutMs} ms\n`);
    }
    this.socket.destroy();
  }

  private onClose(): void {
    const wasUpgraded = this.phase === 'upgraded';
    this.phase = 'closed';
    if (this.up) {
      this.up.owner = undefined;
      this.up.destroy();
      this.up = undefined;
    }
    this.releaseLease();
    void wasUpgraded;
    this.proxy.drop(this);
  }
}

export class HttpProxy {
  readonly pool: MachinePool;
  readonly domain: string;
  readonly region: string;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  readonly headTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly upstreamIdleMs: number;
  readonly maxHeadBytes: number;
  readonly maxHeaders: number;
  readonly maxReplayBodyBytes: number;
  readonly httpsPort: () => number | undefined;
  private readonly idle = new Map<string, Upstream[]>();
  private readonly conns = new Set<ClientConn>();
  private readonly sweeper: NodeJS.Timeout;
  readonly ids: RequestIds;
  /**
   * performance.now() as of the I/O callback being served: the clock of deadlines and latencies.
   * Every entry into the data path `tick()`s it (client and machine reads and closes, a settled
   * acquire, the sweeper), so a request pays two clock reads, not one per deadline it sets.
   */
  now = performance.now();

  constructor(o: HttpProxyOptions) {
    this.pool = o.pool;
    this.domain = o.domain;
    this.region = o.region;
    this.ids = new RequestIds(o.region);
    this.logger = o.logger;
    this.metrics = o.metrics;
    this.headTimeoutMs = o.headTimeoutMs ?? 10_000;
    this.idleTimeoutMs = o.idleTimeoutMs ?? 60_000;
    this.upstreamTimeoutMs = o.upstreamTimeoutMs ?? 60_000;
    this.upstreamIdleMs = o.upstreamIdleMs ?? 4_000;
    this.maxHeadBytes = o.maxHeadBytes ?? 32 * 1024;
    this.maxHeaders = o.maxHeaders ?? 100;
    this.maxReplayBodyBytes = o.maxReplayBodyBytes ?? 1024 * 1024;
    this.httpsPort = o.httpsPort ?? (() => undefined);
    const tick = Math.max(20, Math.min(250, Math.floor(Math.min(this.headTimeoutMs, this.upstreamTimeoutMs) / 4)));
    this.sweeper = setInterval(() => {
      const now = this.tick();
      for (const c of this.conns) if (c.deadline <= now) c.timedOut();
      for (const list of this.idle.values()) {
        // Oldest first (putIdle pushes, takeIdle pops the newest): stop at the first live one.
        while (list.length > 0 && list[0]!.idleUntil <= now) list.shift()!.destroy();
      }
    }, tick);
    this.sweeper.unref();
  }

  tick(): number {
    return (this.now = performance.now());
  }

  /** Series of `hangar_proxy_requests_total` per app and status class, looked up once. */
  private readonly requestSeries = new Map<string, Cell[]>();
  /** App by Host header value; a request pays a map lookup instead of lowercasing and a regex. */
  private readonly appsByHost = new Map<string, string | null>();

  /**
   * Only apps the route table knows get their own series (unknown names count as "-"), so clients
   * cannot grow it.
   */
  requestsCell(app: string, status: number): Cell {
    let cells = this.requestSeries.get(app);
    if (!cells) this.requestSeries.set(app, (cells = []));
    const cls = Math.floor(status / 100);
    return (cells[cls] ??= this.metrics.requests.cell(labelKey({ app, code: `${cls}xx` })));
  }

  appFor(host: string): string | undefined {
    const known = this.appsByHost.get(host); // null: looked up before, no app
    if (known !== undefined) return known ?? undefined;
    const app = appFromHost(host, this.domain);
    // Bounded: arbitrary Host values from clients must not grow it forever.
    if (this.appsByHost.size >= 4096) this.appsByHost.clear();
    this.appsByHost.set(host, app ?? null);
    return app;
  }

  /** Takes a client connection (a plain socket or a TLS socket after the handshake). */
  handle(socket: Socket, kind: ListenerKind, listenerPort?: number): void {
    const c = new ClientConn(socket, kind, this, listenerPort);
    this.conns.add(c);
    this.metrics.activeConnections.incKey(kind === 'https' ? ACTIVE_HTTPS : ACTIVE_HTTP);
  }

  /**
   * Takes a plain client connection as the raw libuv handle a listener accepted (accept-raw.ts),
   * wrapped here with `onread` into the shared client read buffer.
   */
  adopt(handle: unknown, listenerPort?: number): void {
    let conn: ClientConn | undefined;
    const socket = new Socket({
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer: CLIENT_READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          this.tick();
          conn?.onRead((buf as Buffer).subarray(0, n));
          return true;
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    conn = new ClientConn(socket, 'http', this, listenerPort, true);
    this.conns.add(conn);
    this.metrics.activeConnections.incKey(ACTIVE_HTTP);
  }

  drop(c: ClientConn): void {
    if (this.conns.delete(c)) this.metrics.activeConnections.incKey(c.kind === 'https' ? ACTIVE_HTTPS : ACTIVE_HTTP, -1);
  }

  takeIdle(key: string): Upstream | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const up = list.pop()!;
      if (!up.destroyed) {
        up.idleUntil = Infinity;
        return up;
      }
    }
    return undefined;
  }

  putIdle(up: Upstream): void {
    let list = this.idle.get(up.key);
    if (!list) this.idle.set(up.key, (list = []));
    if (list.length >= 2048) return up.destroy();
    up.idleUntil = this.now + this.upstreamIdleMs;
    list.push(up);
  }

  forget(up: Upstream): void {
    const list = this.idle.get(up.key);
    if (!list) return;
    const i = list.indexOf(up);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(up.key);
  }

  connections(): number {
    return this.conns.size;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const c of this.conns) c.socket.destroy();
    for (const list of this.idle.values()) for (const up of list) up.destroy();
    this.idle.clear();
  }
}
