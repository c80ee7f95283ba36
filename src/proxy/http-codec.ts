/**
 * The small HTTP/1.1 codec the proxy forwards with: head parsing with limits (size, header count,
 * strict syntax so requests cannot be smuggled) and body framing (content-length, chunked,
 * until-close) that finds where a message ends without copying its bytes. Pure.
 * @module
 */

import { latin1 } from './latin1-strings.js';

export const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Where the first CRLFCRLF in `buf[from, to)` starts, or -1: `buf.indexOf(CRLFCRLF)` without the
 * call into C++, which costs more than a head of a few hundred bytes. The byte at a match's last
 * position decides the step (Horspool): not CR or LF → 4, CR → 1, LF without the match → 2.
 */
export function headEnd(buf: Uint8Array, from = 0, to = buf.length): number {
  if (to - from > 2048) {
    const at = Buffer.prototype.indexOf.call(buf, CRLFCRLF, from) as number;
    return at >= 0 && at + 4 <= to ? at : -1;
  }
  let i = from + 3;
  while (i < to) {
    const b = buf[i]!;
    if (b === 10) {
      if (buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i - 3;
      i += 2;
    } else if (b === 13) i += 1;
    else i += 4;
  }
  return -1;
}

export class HttpParseError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface Head {
  /** Request: method; response: undefined. */
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  status: number;
  reason: string;
  /** Header lines as received, name lowercased. */
  names: string[];
  values: string[];
}

/** tchar (RFC 9110 §5.6.2) by char code: a table lookup per character instead of a regex per name. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

function isToken(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** NUL, or CR/LF that is not part of a CRLF line end: never allowed inside a head. */
const BARE_CONTROL = /\0|\r(?!\n)|(?<!\r)\n/;

export function headerValue(h: Head, name: string): string | undefined {
  for (let i = 0; i < h.names.length; i++) if (h.names[i] === name) return h.values[i];
  return undefined;
}

function parseHeaders(lines: string[], from: number, h: Head, maxHeaders: number): void {
  if (lines.length - from > maxHeaders) throw new HttpParseError(431, `more than ${maxHeaders} header fields`);
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HttpParseError(400, 'malformed header line');
    if (!isToken(line, 0, colon)) throw new HttpParseError(400, 'malformed header name');
    h.names.push(line.slice(0, colon).toLowerCase());
    h.values.push(line.slice(colon + 1).trim());
  }
}

/**
 * `text` is a whole head without its final CRLFCRLF; values are checked once for it, not per line.
 * The plain-string reference of a valid request head: the data path scans heads in place
 * (`scanRequestHead`), and http-codec.test.ts holds the scanner to this on valid and malformed heads.
 */
export function parseRequestHead(text: string, maxHeaders: number): Head {
  if (BARE_CONTROL.test(text)) throw new HttpParseError(400, 'malformed head: NUL or a bare CR or LF');
  const lines = text.split('\r\n');
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0]!);
  if (!m) throw new HttpParseError(400, 'malformed request line');
  const h: Head = { method: m[1]!, target: m[2]!, minor: Number(m[3]), status: 0, reason: '', names: [], values: [] };
  parseHeaders(lines, 1, h, maxHeaders);
  return h;
}

export function parseResponseHead(text: string): Head {
  if (BARE_CONTROL.test(text)) throw new HttpParseError(502, 'malformed response head from the machine: NUL or a bare CR or LF');
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!m) throw new HttpParseError(502, 'malformed status line from the machine');
  const h: Head = { method: '', target: '', minor: Number(m[1]), status: Number(m[2]), reason: m[3] ?? '', names: [], values: [] };
  parseHeaders(lines, 1, h, 1000);
  return h;
}

/** How a message body ends. */
export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

const NO_BODY: Framing = Object.freeze({ kind: 'none' });
const CHUNKED: Framing = Object.freeze({ kind: 'chunked' });
const UNTIL_CLOSE: Framing = Object.freeze({ kind: 'close' });

/** The reference for `scannedRequestFraming` (tests compare the two), like `parseRequestHead`. */
export function requestFraming(h: Head): Framing {
  let te: string | undefined;
  let cl: string | undefined;
  for (let i = 0; i < h.names.length; i++) {
    const n = h.names[i];
    if (n === 'transfer-encoding') te = te === undefined ? h.values[i] : `${te}, ${h.values[i]}`;
    else if (n === 'content-length') {
      if (cl !== undefined && cl !== h.values[i]) throw new HttpParseError(400, 'conflicting content-length headers');
      cl = h.values[i];
    }
  }
  return framingOf(te, cl);
}

function framingOf(te: string | undefined, cl: string | undefined): Framing {
  if (te !== undefined) {
    if (cl !== undefined) throw new HttpParseError(400, 'both transfer-encoding and content-length');
    if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new HttpParseError(400, 'transfer-encoding must end with chunked');
    return CHUNKED;
  }
  if (cl !== undefined) {
    if (!isLength(cl)) throw new HttpParseError(400, 'malformed content-length');
    const length = Number(cl);
    return length === 0 ? NO_BODY : { kind: 'length', length };
  }
  return NO_BODY;
}

/** The reference for `scannedFraming` (tests compare the two); the rule itself is `responseFramingOf`. */
export function responseFraming(h: Head, requestMethod: string): Framing {
  let te: string | undefined;
  let cl: string | undefined;
  for (let i = 0; i < h.names.length; i++) {
    if (h.names[i] === 'transfer-encoding') te = h.values[i];
    else if (h.names[i] === 'content-length') cl = h.values[i];
  }
  return responseFramingOf(h.status, requestMethod, te, cl);
}

/** 1 to 15 decimal digits (a Content-Length the proxy accepts), without a regex per message. */
function isLength(v: string): boolean {
  if (v.length === 0 || v.length > 15) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

export const CONNECTION_CLOSE = 1;
export const CONNECTION_KEEP_ALIVE = 2;
export const CONNECTION_UPGRADE = 4;
/** The value names other tokens too: headers a proxy must drop as hop-by-hop. */
export const CONNECTION_NAMES_HEADERS = 8;
const connectionMemo = new Map<string, number>();

/**
 * Which of `close`, `keep-alive` and `upgrade` a Connection value lists, and whether it names any
 * other token (CONNECTION_* bits, any case), remembered per value: the same few values come with every message. Only short values
 * are remembered, so clients cannot pin large heads in the memo.
 */
export function connectionTokens(value: string): number {
  let bits = connectionMemo.get(value);
  if (bits === undefined) {
    const v = value.toLowerCase();
    bits =
      (/\bclose\b/.test(v) ? CONNECTION_CLOSE : 0) | (/\bkeep-alive\b/.test(v) ? CONNECTION_KEEP_ALIVE : 0) | (/\bupgrade\b/.test(v) ? CONNECTION_UPGRADE : 0)
      | (connectionHeaderNames(v).length > 0 ? CONNECTION_NAMES_HEADERS : 0);
    if (value.length <= 64) {
      if (connectionMemo.size >= 256) connectionMemo.clear();
      connectionMemo.set(value, bits);
    }
  }
  return bits;
}

/** The tokens of a (lower-case) Connection value other than close, keep-alive and upgrade: header names. */
export function connectionHeaderNames(value: string): string[] {
  const named: string[] = [];
  for (const t of value.split(',')) {
    const token = t.trim();
    if (token !== '' && token !== 'close' && token !== 'keep-alive' && token !== 'upgrade') named.push(token);
  }
  return named;
}

/** How a response body ends, from its status, the request method and its last TE / CL values. */
function responseFramingOf(status: number, requestMethod: string, te: string | undefined, cl: string | undefined): Framing {
  if (requestMethod === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return NO_BODY;
  if (te !== undefined && /chunked\s*$/i.test(te)) return CHUNKED;
  if (te === undefined && cl !== undefined && isLength(cl)) {
    const length = Number(cl);
    return length === 0 ? NO_BODY : { kind: 'length', length };
  }
  return UNTIL_CLOSE;
}

const enum C {
  Size,
  SizeExt,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  Done,
}

/**
 * Finds the end of a body in a stream of chunks. `feed` answers how many bytes of `buf` belong to
 * the body (the rest belongs to the next message) and whether the body is complete.
 */
export class BodyFramer {
  private remaining = 0;
  private state: C = C.Size;
  private sizeDigits = 0;
  private lineLength = 0;
  done = true;

  constructor(public framing: Framing = NO_BODY) {
    this.reset(framing);
  }

  /** Starts over for a new message (a connection reuses its framers: one per direction). */
  reset(framing: Framing): this {
    this.framing = framing;
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.state = C.Size;
    this.sizeDigits = 0;
    this.lineLength = 0;
    this.done = framing.kind === 'none';
    return this;
  }

  feed(buf: Buffer): number {
    if (this.done) return 0;
    const f = this.framing;
    if (f.kind === 'close') return buf.length;
    if (f.kind === 'length') {
      const n = Math.min(this.remaining, buf.length);
      this.remaining -= n;
      if (this.remaining === 0) this.done = true;
      return n;
    }
    let i = 0;
    while (i < buf.length) {
      const b = buf[i]!;
      switch (this.state) {
        case C.Size: {
          const d = b >= 48 && b <= 57 ? b - 48 : b >= 97 && b <= 102 ? b - 87 : b >= 65 && b <= 70 ? b - 55 : -1;
          if (d >= 0) {
            if (++this.sizeDigits > 12) throw new HttpParseError(400, 'chunk size too large');
            this.remaining = this.remaining * 16 + d;
          } else if (this.sizeDigits === 0) throw new HttpParseError(400, 'malformed chunk size');
          else if (b === 13) this.state = C.SizeLf;
          else if (b === 59 || b === 32 || b === 9) this.state = C.SizeExt;
          else throw new HttpParseError(400, 'malformed chunk size');
          i++;
          break;
        }
        case C.SizeExt:
          if (b === 13) this.state = C.SizeLf;
          else if (++this.lineLength > 4096) throw new HttpParseError(400, 'chunk extension too long');
          i++;
          break;
        case C.SizeLf:
          if (b !== 10) throw new HttpParseError(400, 'malformed chunk line');
          i++;
          this.lineLength = 0;
          this.sizeDigits = 0;
          if (this.remaining === 0) this.state = C.Trailer;
          else this.state = C.Data;
          break;
        case C.Data: {
          const n = Math.min(this.remaining, buf.length - i);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = C.DataCr;
          break;
        }
        case C.DataCr:
          if (b !== 13) throw new HttpParseError(400, 'chunk not followed by CRLF');
          this.state = C.DataLf;
          i++;
          break;
        case C.DataLf:
          if (b !== 10) throw new HttpParseError(400, 'chunk not followed by CRLF');
          this.state = C.Size;
          i++;
          break;
        case C.Trailer:
          // A trailer section: lines until an empty line.
          if (b === 13) this.state = C.TrailerLf;
          else if (++this.lineLength > 8192) throw new HttpParseError(431, 'trailers too long');
          i++;
          break;
        case C.TrailerLf: {
          if (b !== 10) throw new HttpParseError(400, 'malformed trailer');
          i++;
          if (this.lineLength === 0) {
            this.state = C.Done;
            this.done = true;
            return i;
          }
          this.lineLength = 0;
          this.state = C.Trailer;
          break;
        }
        default:
          return i;
      }
    }
    return i;
  }
}

/**
 * A response head read in place, for the common final response: validated like
 * `parseResponseHead` (status line, no NUL or bare CR/LF, token names, ≤ 1000 fields), but instead
 * of strings per header it answers byte ranges — the header lines the proxy forwards unchanged —
 * and only the few values the proxy acts on. The forwarded head is then copied, not rebuilt.
 */
export interface ResponseScan {
  minor: number;
  status: number;
  /** The reason phrase: bytes [reasonStart, reasonEnd) of the head. */
  reasonStart: number;
  reasonEnd: number;
  /**
   * What follows `HTTP/1.1 <status> ` in the forwarded head, as [start, end) pairs: the reason
   * phrase and its CRLF, then the header lines kept, each with its CRLF (adjacent ones merged).
   */
  keep: number[];
  keptBytes: number;
  /** First `Connection` value (as headerValue answers it). */
  connection: string | undefined;
  /** Last `Via`, `Transfer-Encoding`, `Content-Length` values (as the string path kept them). */
  via: string | undefined;
  transferEncoding: string | undefined;
  contentLength: string | undefined;
  /** A `fly-replay` header is present (the proxy replays instead of forwarding). */
  flyReplay: boolean;
}

const enum Rh {
  Drop = 1,
  Connection,
  Via,
  TransferEncoding,
  ContentLength,
  FlyReplay,
}

/**
 * A case-insensitive lookup of a few lowercase header names in `buf[from, to)`, bucketed by length
 * (a name's bytes are compared only with names of its length); 0 for any other name.
 */
function nameLookup<T extends number>(entries: [string, T][]): (buf: Buffer, from: number, to: number) => T | 0 {
  const byLength: { name: Uint8Array; what: T }[][] = [];
  for (const [name, what] of entries) (byLength[name.length] ??= []).push({ name: Buffer.from(name, 'latin1'), what });
  return (buf, from, to) => {
    const len = to - from;
    const bucket = byLength[len];
    if (bucket === undefined) return 0;
    for (let k = 0; k < bucket.length; k++) {
      const name = bucket[k]!.name;
      let i = 0;
      // `| 0x20` lowercases A-Z; the names hold only letters and '-', which no other token byte maps to.
      while (i < len && (buf[from + i]! | 0x20) === name[i]) i++;
      if (i === len) return bucket[k]!.what;
    }
    return 0;
  };
}

const enum LB {
  Cr = 1,
  Bad,
  Colon,
}
/** The bytes a header line's scan stops at (0 for every other byte): one table load per byte. */
const LINE_BYTE = new Uint8Array(256);
LINE_BYTE[13] = LB.Cr;
LINE_BYTE[0] = LB.Bad;
LINE_BYTE[10] = LB.Bad;
LINE_BYTE[58] = LB.Colon;

/** What String.prototype.trim removes, within latin1 (CR and LF cannot occur inside a line). */
function isTrimmed(b: number): boolean {
  return b === 32 || b === 9 || b === 11 || b === 12 || b === 160;
}

/** Response header names the proxy acts on, lowercase, with what it does with them. */
const RESPONSE_NAMES: [string, Rh][] = [
  ['connection', Rh.Connection], ['keep-alive', Rh.Drop], ['proxy-connection', Rh.Drop], ['via', Rh.Via], ['fly-request-id', Rh.Drop],
  ['transfer-encoding', Rh.TransferEncoding], ['content-length', Rh.ContentLength], ['fly-replay', Rh.FlyReplay],
];
const responseName = nameLookup(RESPONSE_NAMES);
const dropsResponseLine = (what: Rh | 0) => what === Rh.Drop || what === Rh.Connection || what === Rh.Via;
/** Response headers not forwarded as they are (hop-by-hop, or replaced by the proxy's own). */
export const RESPONSE_DROP: ReadonlySet<string> = new Set(RESPONSE_NAMES.filter(([, what]) => dropsResponseLine(what)).map(([name]) => name));

/** `buf[0, end)` is a whole response head without its final CRLFCRLF. */
export function scanResponseHead(buf: Buffer, end: number, maxHeaders = 1000): ResponseScan {
  // Status line: "HTTP/1.x SSS" then the end of the line or " reason".
  let slEnd = 0;
  while (slEnd < end && buf[slEnd] !== 13) slEnd++;
  const bad = () => new HttpParseError(502, 'malformed response head from the machine: NUL or a bare CR or LF');
  const d0 = buf[9]! - 48, d1 = buf[10]! - 48, d2 = buf[11]! - 48;
  if (
    slEnd < 12 || buf[0] !== 72 || buf[1] !== 84 || buf[2] !== 84 || buf[3] !== 80 || buf[4] !== 47 || buf[5] !== 49 || buf[6] !== 46 ||
    (buf[7] !== 48 && buf[7] !== 49) || buf[8] !== 32 || d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 ||
    (slEnd > 12 && buf[12] !== 32)
  ) {
    // A NUL or bare LF in the status line is reported as such, like the string parser does.
    for (let i = 0; i < slEnd; i++) if (buf[i] === 0 || buf[i] === 10) throw bad();
    throw new HttpParseError(502, 'malformed status line from the machine');
  }
  for (let i = 12; i < slEnd; i++) if (buf[i] === 0 || buf[i] === 10) throw bad();
  const scan: ResponseScan = {
    minor: buf[7]! - 48, status: d0 * 100 + d1 * 10 + d2, reasonStart: slEnd > 12 ? 13 : 12, reasonEnd: slEnd,
    keep: [], keptBytes: 0, connection: undefined, via: undefined, transferEncoding: undefined, contentLength: undefined, flyReplay: false,
  };
  let keepFrom = scan.reasonStart;
  if (slEnd === end) {
    scan.keep.push(keepFrom, end + 2);
    scan.keptBytes = end + 2 - keepFrom;
    return scan;
  }
  if (buf[slEnd + 1] !== 10) throw bad();
  let at = slEnd + 2;
  let fields = 0;
  while (at < end) {
    if (++fields > maxHeaders) throw new HttpParseError(431, `more than ${maxHeaders} header fields`);
    // One header line [at, eol); every byte checked for NUL and bare CR/LF, the name for tchar.
    let colon = -1;
    let eol = at;
    for (; eol < end; eol++) {
      const k = LINE_BYTE[buf[eol]!]!;
      if (k === 0) continue;
      if (k === LB.Cr) break;
      if (k === LB.Bad) throw bad();
      if (colon < 0) colon = eol;
    }
    if (eol < end && buf[eol + 1] !== 10) throw bad();
    if (colon <= at) throw new HttpParseError(400, 'malformed header line');
    for (let i = at; i < colon; i++) {
      const c = buf[i]!;
      if (c > 127 || TCHAR[c] === 0) throw new HttpParseError(400, 'malformed header name');
    }
    const what = responseName(buf, at, colon);
    if (what !== 0) {
      let vs = colon + 1;
      let ve = eol;
      while (vs < ve && isTrimmed(buf[vs]!)) vs++;
      while (ve > vs && isTrimmed(buf[ve - 1]!)) ve--;
      const value = what === Rh.Drop ? '' : latin1(buf, vs, ve);
      switch (what) {
        case Rh.Connection: scan.connection ??= value; break;
        case Rh.Via: scan.via = value; break;
        case Rh.TransferEncoding: scan.transferEncoding = value; break;
        case Rh.ContentLength: scan.contentLength = value; break;
        case Rh.FlyReplay: scan.flyReplay = true; break;
        default: break;
      }
      if (dropsResponseLine(what)) {
        // Hop-by-hop or replaced by the proxy: the kept range ends before this line.
        if (at > keepFrom) {
          scan.keep.push(keepFrom, at);
          scan.keptBytes += at - keepFrom;
        }
        keepFrom = eol + 2;
      }
    }
    at = eol + 2;
  }
  const keepTo = Math.min(at, end + 2);
  if (keepTo > keepFrom) {
    scan.keep.push(keepFrom, keepTo);
    scan.keptBytes += keepTo - keepFrom;
  }
  return scan;
}

/** `responseFraming` from the values a scan keeps. */
export function scannedFraming(s: ResponseScan, requestMethod: string): Framing {
  return responseFramingOf(s.status, requestMethod, s.transferEncoding, s.contentLength);
}

/** Request header names the proxy acts on (see RequestScan). */
export const enum Rq {
  Other = 0,
  Host,
  Connection,
  Upgrade,
  ForceInstance,
  PreferRegion,
  TransferEncoding,
  ContentLength,
  /** Dropped; its values are joined into the proxy's own. */
  XForwardedFor,
  /** Dropped; its last value is extended by the proxy's own. */
  Via,
  /** Hop-by-hop: dropped. */
  Hop,
  /** Set by the proxy: a client's copy is dropped so it cannot be spoofed. */
  Managed,
}

const REQUEST_NAMES: [string, Rq][] = [
  ['host', Rq.Host], ['connection', Rq.Connection], ['upgrade', Rq.Upgrade], ['fly-force-instance-id', Rq.ForceInstance],
  ['fly-prefer-region', Rq.PreferRegion], ['transfer-encoding', Rq.TransferEncoding], ['content-length', Rq.ContentLength],
  ['x-forwarded-for', Rq.XForwardedFor], ['via', Rq.Via],
  ['keep-alive', Rq.Hop], ['proxy-connection', Rq.Hop], ['te', Rq.Hop],
  ['fly-client-ip', Rq.Managed], ['fly-region', Rq.Managed], ['fly-request-id', Rq.Managed], ['fly-forwarded-port', Rq.Managed],
  ['x-forwarded-proto', Rq.Managed], ['x-forwarded-port', Rq.Managed], ['x-forwarded-ssl', Rq.Managed], ['fly-replay-src', Rq.Managed],
];
const requestName = nameLookup(REQUEST_NAMES);

/**
 * A request head read in place: refused exactly where `parseRequestHead` refuses it, answering the
 * request line, the values the proxy routes and frames by, and each header line's position and
 * kind, so the head for the machine is copied line by line instead of rebuilt from strings.
 */
/**
 * The request target of a scanned head, made only when needed (a redirect): targets vary per
 * request, so they are not worth a string per request, nor a slot in the short-value cache.
 */
export function requestTarget(scan: RequestScan, buf: Buffer): string {
  return buf.toString('latin1', scan.targetStart, scan.targetEnd);
}

export interface RequestScan {
  method: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  /** Bytes [0, targetEnd) of the head are "METHOD target"; the target starts at targetStart. */
  targetStart: number;
  targetEnd: number;
  /** Per header line: its start, its colon, its end (before the CRLF). */
  lines: number[];
  kinds: Rq[];
  host: string | undefined;
  /** Every Connection value, lowercased, joined with ", " ('' when none). */
  connection: string;
  upgrade: string | undefined;
  forceInstance: string | undefined;
  preferRegion: string | undefined;
  /** Every Transfer-Encoding value joined with ", ". */
  transferEncoding: string | undefined;
  contentLength: string | undefined;
  /** A second Content-Length with another value (refused by scannedRequestFraming). */
  conflictingLength: boolean;
  /** Every X-Forwarded-For value joined with ", ". */
  forwardedFor: string | undefined;
  /** The last Via value. */
  via: string | undefined;
}

/** `buf[0, end)` is a whole request head without its final CRLFCRLF. */
export function scanRequestHead(buf: Buffer, end: number, maxHeaders: number): RequestScan {
  const bad = () => new HttpParseError(400, 'malformed head: NUL or a bare CR or LF');
  const badLine = () => new HttpParseError(400, 'malformed request line');
  // Whole-head refusals first, as in the string parser: NUL, a CR not before LF, an LF not after
  // CR. Every CR then ends a line: counting them counts the header lines.
  let crs = 0;
  for (let i = 0; i < end; i++) {
    const b = buf[i]!;
    if (b === 0 || (b === 10 && (i === 0 || buf[i - 1] !== 13)) || (b === 13 && buf[i + 1] !== 10)) throw bad();
    if (b === 13) crs++;
  }
  // Request line: token SP target SP "HTTP/1." [01]; the target has no whitespace (regex \S).
  let lineEnd = 0;
  while (lineEnd < end && buf[lineEnd] !== 13) lineEnd++;
  let sp = 0;
  while (sp < lineEnd && buf[sp] !== 32) {
    const c = buf[sp]!;
    if (c > 127 || TCHAR[c] === 0) throw badLine();
    sp++;
  }
  if (sp === 0 || sp === lineEnd) throw badLine();
  let te = sp + 1;
  while (te < lineEnd && !isTrimmed(buf[te]!)) te++;
  if (
    te === sp + 1 || lineEnd - te !== 9 || buf[te] !== 32 || buf[te + 1] !== 72 || buf[te + 2] !== 84 || buf[te + 3] !== 84 ||
    buf[te + 4] !== 80 || buf[te + 5] !== 47 || buf[te + 6] !== 49 || buf[te + 7] !== 46 || (buf[te + 8] !== 48 && buf[te + 8] !== 49)
  ) {
    throw badLine();
  }
  if (crs > maxHeaders) throw new HttpParseError(431, `more than ${maxHeaders} header fields`);
  const scan: RequestScan = {
    method: latin1(buf, 0, sp), minor: buf[te + 8]! - 48, targetStart: sp + 1, targetEnd: te,
    lines: [], kinds: [], host: undefined, connection: '', upgrade: undefined, forceInstance: undefined, preferRegion: undefined,
    transferEncoding: undefined, contentLength: undefined, conflictingLength: false, forwardedFor: undefined, via: undefined,
  };
  let at = lineEnd + 2;
  while (at < end) {
    // Every CR here starts a CRLF (checked above): the line ends at the first one.
    let colon = -1;
    let eol = at;
    for (; eol < end; eol++) {
      const b = buf[eol]!;
      if (b === 13) break;
      if (b === 58 && colon < 0) colon = eol;
    }
    if (colon < 0 || colon === at) throw new HttpParseError(400, 'malformed header line');
    for (let i = at; i < colon; i++) {
      const c = buf[i]!;
      if (c > 127 || TCHAR[c] === 0) throw new HttpParseError(400, 'malformed header name');
    }
    const what = requestName(buf, at, colon);
    scan.lines.push(at, colon, eol);
    scan.kinds.push(what);
    if (what !== Rq.Other && what !== Rq.Hop && what !== Rq.Managed) {
      let vs = colon + 1;
      let ve = eol;
      while (vs < ve && isTrimmed(buf[vs]!)) vs++;
      while (ve > vs && isTrimmed(buf[ve - 1]!)) ve--;
      const v = latin1(buf, vs, ve);
      switch (what) {
        case Rq.Host: scan.host ??= v; break;
        case Rq.Connection: scan.connection = scan.connection ? `${scan.connection}, ${v.toLowerCase()}` : v.toLowerCase(); break;
        case Rq.Upgrade: scan.upgrade ??= v; break;
        case Rq.ForceInstance: scan.forceInstance ??= v; break;
        case Rq.PreferRegion: scan.preferRegion ??= v; break;
        case Rq.TransferEncoding: scan.transferEncoding = scan.transferEncoding === undefined ? v : `${scan.transferEncoding}, ${v}`; break;
        case Rq.ContentLength:
          if (scan.contentLength !== undefined && scan.contentLength !== v) scan.conflictingLength = true;
          scan.contentLength ??= v;
          break;
        case Rq.XForwardedFor: scan.forwardedFor = scan.forwardedFor ? `${scan.forwardedFor}, ${v}` : v; break;
        case Rq.Via: scan.via = v; break;
        default: break;
      }
    }
    at = eol + 2;
  }
  return scan;
}

/** `requestFraming` from a scan's values (same refusals, same answers). */
export function scannedRequestFraming(s: RequestScan): Framing {
  if (s.conflictingLength) throw new HttpParseError(400, 'conflicting content-length headers');
  return framingOf(s.transferEncoding, s.contentLength);
}
