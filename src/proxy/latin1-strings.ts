/**
 * Strings of short header values read from a head, remembered by their bytes. The values the
 * proxy acts on repeat from request to request (Host, Connection, Content-Length, the method),
 * and making a string of buffer bytes is a call into C++ (~0.15 µs); hashing and comparing a
 * dozen bytes in JS costs a fraction of that. A small direct-mapped table: a slot whose bytes
 * differ is simply overwritten.
 * @module
 */

const SLOTS = 256;
/** Longer values are made directly (rare for the headers asked for, and long to compare). */
const MAX_CACHED = 48;

const slotBytes: (Uint8Array | undefined)[] = new Array(SLOTS).fill(undefined);
const slotStrings: string[] = new Array(SLOTS).fill('');

/** `buf[from, to)` as a latin1 string. */
export function latin1(buf: Uint8Array, from: number, to: number): string {
  const n = to - from;
  if (n === 0) return '';
  if (n > MAX_CACHED) return slice(buf, from, to);
  let h = n;
  for (let i = from; i < to; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  const slot = (h ^ (h >>> 8) ^ (h >>> 16)) & (SLOTS - 1);
  const known = slotBytes[slot];
  if (known !== undefined && known.length === n) {
    let i = 0;
    while (i < n && known[i] === buf[from + i]) i++;
    if (i === n) return slotStrings[slot]!;
  }
  const s = slice(buf, from, to);
  const copy = new Uint8Array(n);
  for (let i = 0; i < n; i++) copy[i] = buf[from + i]!;
  slotBytes[slot] = copy;
  slotStrings[slot] = s;
  return s;
}

const slice = (buf: Uint8Array, from: number, to: number): string => Buffer.prototype.toString.call(buf, 'latin1', from, to);
