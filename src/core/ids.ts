/**
 * Identifiers in Fly's formats: 14-hex-character machine ids, 26-character ULID versions, lease
 * nonces, app ids and request ids.
 * @module
 */
import { randomBytes, randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function newMachineId(): string {
  return randomBytes(7).toString('hex');
}

export const MACHINE_ID_PATTERN = /^[0-9a-f]{14}$/;

let lastUlidTime = 0;
let lastUlidRandom: number[] = [];

/**
 * A monotonic ULID: 48-bit ms timestamp + 80 random bits, Crockford base32. Within one millisecond
 * the random part is incremented so ids created in order also sort in order (events rely on it).
 */
export function newUlid(now: number = Date.now()): string {
  let random: number[];
  if (now <= lastUlidTime && lastUlidRandom.length === 16) {
    now = lastUlidTime;
    random = incrementBase32(lastUlidRandom);
  } else {
    random = Array.from(poolBytes(16), (b) => b & 31);
  }
  lastUlidTime = now;
  lastUlidRandom = random;
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + random.map((d) => CROCKFORD[d]).join('');
}

// Every API response carries a ULID request id; drawing randomness 4 KiB at a time instead of
// 16 bytes per call keeps that off the profile.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function poolBytes(n: number): Buffer {
  if (poolOffset + n > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return bytes;
}

function incrementBase32(digits: number[]): number[] {
  const next = digits.slice();
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i]! < 31) {
      next[i]!++;
      return next;
    }
    next[i] = 0;
  }
  return next;
}

export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function ulidTime(ulid: string): number {
  let t = 0;
  for (const ch of ulid.slice(0, 10)) t = t * 32 + CROCKFORD.indexOf(ch);
  return t;
}

export function newNonce(): string {
  return randomBytes(6).toString('hex');
}

export function newAppId(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  return Array.from(randomBytes(16), (b) => alphabet[b % 36]).join('');
}

export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}

export function newRequestId(): string {
  return newUlid().toLowerCase();
}

/** App, org and machine names: lowercase DNS labels (RFC 1123), as Fly requires. */
export const DNS_LABEL_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const DNS_LABEL_RULE = 'lowercase letters, digits and dashes, 1-63 characters, starting and ending with a letter or digit';
