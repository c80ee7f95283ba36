/**
 * A minimal DNS message codec (RFC 1035, plus the EDNS0 OPT record of RFC 6891): enough to read a
 * standard query and write an authoritative answer with A, AAAA and TXT records. Names in answers
 * point at the question name (compression pointer 0xc00c), so only the question is ever decoded.
 * @module
 */
import { isIPv6 } from 'node:net';

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface DnsQuestion {
  name: string; // lowercase, no trailing dot
  type: number;
  class: number;
}

export interface DnsQuery {
  id: number;
  flags: number;
  opcode: number;
  recursionDesired: boolean;
  question: DnsQuestion;
  /** Present when the query carried an OPT record: the requester's UDP payload size. */
  ednsUdpSize?: number;
}

export type DnsAnswer =
  | { type: typeof TYPE.A; ttl: number; address: string }
  | { type: typeof TYPE.AAAA; ttl: number; address: string }
  | { type: typeof TYPE.TXT; ttl: number; text: string };

export class DnsFormatError extends Error {}

/** Decodes a query; throws `DnsFormatError` on anything that is not one well-formed question. */
export function decodeQuery(msg: Buffer): DnsQuery {
  if (msg.length < 12) throw new DnsFormatError('message shorter than a header');
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) throw new DnsFormatError('message is a response');
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  const ns = msg.readUInt16BE(8);
  const ar = msg.readUInt16BE(10);
  if (qd !== 1) throw new DnsFormatError(`expected 1 question, got ${qd}`);
  let offset = 12;
  const labels: string[] = [];
  for (let guard = 0; ; guard++) {
    if (guard > 127 || offset >= msg.length) throw new DnsFormatError('bad question name');
    const len = msg[offset]!;
    offset++;
    if (len === 0) break;
    if (len > 63 || offset + len > msg.length) throw new DnsFormatError('bad label'); // no pointers in a question
    labels.push(msg.toString('latin1', offset, offset + len).toLowerCase());
    offset += len;
  }
  if (offset + 4 > msg.length) throw new DnsFormatError('truncated question');
  const question = { name: labels.join('.'), type: msg.readUInt16BE(offset), class: msg.readUInt16BE(offset + 2) };
  offset += 4;
  const query: DnsQuery = { id, flags, opcode: (flags >> 11) & 0xf, recursionDesired: (flags & 0x0100) !== 0, question };
  // Skip answer/authority records (normally none), then look for OPT among the additional ones.
  for (let i = 0; i < an + ns + ar; i++) {
    const nameStart = offset;
    offset = skipName(msg, offset);
    if (offset + 10 > msg.length) throw new DnsFormatError('truncated record');
    const type = msg.readUInt16BE(offset);
    const klass = msg.readUInt16BE(offset + 2);
    const rdlen = msg.readUInt16BE(offset + 8);
    offset += 10 + rdlen;
    if (offset > msg.length) throw new DnsFormatError('truncated record data');
    if (i >= an + ns && type === TYPE.OPT && msg[nameStart] === 0) query.ednsUdpSize = Math.max(512, klass);
  }
  return query;
}

function skipName(msg: Buffer, offset: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (offset >= msg.length) throw new DnsFormatError('truncated name');
    const len = msg[offset]!;
    if (len === 0) return offset + 1;
    if ((len & 0xc0) === 0xc0) return offset + 2;
    offset += 1 + len;
  }
  throw new DnsFormatError('name too long');
}

/** 16 bytes of an IPv6 address (textual form as `node:net` accepts it, no zone, no embedded IPv4). */
export function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address) || address.includes('.') || address.includes('%')) throw new Error(`not a plain IPv6 address: ${address}`);
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function rdata(answer: DnsAnswer): Buffer {
  switch (answer.type) {
    case TYPE.A:
      return Buffer.from(answer.address.split('.').map(Number));
    case TYPE.AAAA:
      return ipv6Bytes(answer.address);
    case TYPE.TXT: {
      // A TXT record is a list of character-strings of at most 255 bytes each.
      const text = Buffer.from(answer.text, 'utf8');
      const parts: Buffer[] = [];
      for (let i = 0; i < text.length || parts.length === 0; i += 255) {
        const chunk = text.subarray(i, i + 255);
        parts.push(Buffer.from([chunk.length]), chunk);
      }
      return Buffer.concat(parts);
    }
  }
}

export interface EncodeOptions {
  rcode: number;
  answers: DnsAnswer[];
  /** Largest message allowed (512 for plain UDP, the EDNS size, 65535 for TCP). */
  maxSize: number;
  authoritative?: boolean;
}

/**
 * Encodes the response to `query`. Answers that do not fit in `maxSize` are dropped and the TC bit
 * is set, so the client retries over TCP.
 */
export function encodeResponse(query: DnsQuery, options: EncodeOptions): Buffer {
  const q = query.question;
  const qname = Buffer.concat([
    ...(q.name === '' ? [] : q.name.split('.').map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l, 'latin1')]), Buffer.from(l, 'latin1')]))),
    Buffer.from([0]),
  ]);
  const questionBytes = Buffer.alloc(qname.length + 4);
  qname.copy(questionBytes);
  questionBytes.writeUInt16BE(q.type, qname.length);
  questionBytes.writeUInt16BE(q.class, qname.length + 2);
  const opt = query.ednsUdpSize === undefined ? undefined : Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]); // OPT, size 1232
  const records: Buffer[] = [];
  let size = 12 + questionBytes.length + (opt?.length ?? 0);
  let truncated = false;
  for (const answer of options.answers) {
    const data = rdata(answer);
    const rr = Buffer.alloc(12 + data.length);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(answer.type, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(answer.ttl, 6);
    rr.writeUInt16BE(data.length, 10);
    data.copy(rr, 12);
    if (size + rr.length > options.maxSize) {
      truncated = true;
      break;
    }
    size += rr.length;
    records.push(rr);
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  let flags = 0x8000 | (query.opcode << 11) | (query.flags & 0x0100) | (options.rcode & 0xf);
  if (options.authoritative ?? true) flags |= 0x0400;
  if (truncated) flags |= 0x0200;
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(opt ? 1 : 0, 10);
  return Buffer.concat([header, questionBytes, ...records, ...(opt ? [opt] : [])]);
}

/** Builds a query (used by tests and the in-netns probe client). */
export function encodeQuery(id: number, name: string, type: number, options: { edns?: boolean } = {}): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts = [Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, options.edns ? 1 : 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  parts.push(Buffer.from([0, type >> 8, type & 255, 0, 1]));
  if (options.edns) parts.push(Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]));
  return Buffer.concat(parts);
}

export interface DecodedResponse {
  id: number;
  rcode: number;
  truncated: boolean;
  authoritative: boolean;
  answers: DnsAnswer[];
}

/** Decodes a response produced by `encodeResponse` (answers named by pointer to the question). */
export function decodeResponse(msg: Buffer): DecodedResponse {
  const flags = msg.readUInt16BE(2);
  const an = msg.readUInt16BE(6);
  let offset = skipName(msg, 12) + 4;
  const answers: DnsAnswer[] = [];
  for (let i = 0; i < an; i++) {
    offset = skipName(msg, offset);
    const type = msg.readUInt16BE(offset);
    const ttl = msg.readUInt32BE(offset + 4);
    const len = msg.readUInt16BE(offset + 8);
    const data = msg.subarray(offset + 10, offset + 10 + len);
    offset += 10 + len;
    if (type === TYPE.A) answers.push({ type, ttl, address: [...data].join('.') });
    else if (type === TYPE.AAAA) {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) groups.push(data.readUInt16BE(g * 2).toString(16));
      answers.push({ type, ttl, address: groups.join(':') });
    } else if (type === TYPE.TXT) {
      let text = '';
      for (let p = 0; p < data.length; p += 1 + data[p]!) text += data.toString('utf8', p + 1, p + 1 + data[p]!);
      answers.push({ type, ttl, text });
    }
  }
  return { id: msg.readUInt16BE(0), rcode: flags & 0xf, truncated: (flags & 0x0200) !== 0, authoritative: (flags & 0x0400) !== 0, answers };
}
