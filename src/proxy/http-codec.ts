/**
 * The small HTTP/1.1 codec the proxy forwards with: head parsing with limits (size, header count,
 * strict syntax so requests cannot be smuggled) and body framing (content-length, chunked,
 * until-close) that finds where a message ends without copying its bytes. Pure.
 * @module
 */

export const CRLFCRLF = Buffer.from('\r\n\r\n');

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

/** `text` is a whole head without its final CRLFCRLF; values are checked once for it, not per line. */
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
  if (te !== undefined) {
    if (cl !== undefined) throw new HttpParseError(400, 'both transfer-encoding and content-length');
    if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new HttpParseError(400, 'transfer-encoding must end with chunked');
    return { kind: 'chunked' };
  }
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) throw new HttpParseError(400, 'malformed content-length');
    const length = Number(cl);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  return { kind: 'none' };
}

export function responseFraming(h: Head, requestMethod: string): Framing {
  if (requestMethod === 'HEAD' || h.status === 204 || h.status === 304 || (h.status >= 100 && h.status < 200)) return { kind: 'none' };
  let te: string | undefined;
  let cl: string | undefined;
  for (let i = 0; i < h.names.length; i++) {
    if (h.names[i] === 'transfer-encoding') te = h.values[i];
    else if (h.names[i] === 'content-length') cl = h.values[i];
  }
  if (te !== undefined && /chunked\s*$/i.test(te)) return { kind: 'chunked' };
  if (te === undefined && cl !== undefined && /^\d{1,15}$/.test(cl)) {
    const length = Number(cl);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  return { kind: 'close' };
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
  done: boolean;

  constructor(readonly framing: Framing) {
    this.done = framing.kind === 'none';
    if (framing.kind === 'length') this.remaining = framing.length;
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
