/**
 * Fly-Request-Id values: `<base><8 base-36 digits>-<region>`, unique per proxy process (the base
 * is its start time and a random tag; 36^8 ids before the counter wraps). The proxy copies each id
 * into two heads per request, so ids are kept as bytes, a counter incremented in place; a string
 * (for an error answer or a log line) is made only when asked for.
 * @module
 */

const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';
const DIGIT_BYTES = Buffer.from(DIGITS, 'latin1');
/** The byte after each digit byte ('9' → 'a', 'z' → '0' with a carry). */
const NEXT_DIGIT = new Uint8Array(256);
for (let i = 0; i < DIGITS.length; i++) NEXT_DIGIT[DIGIT_BYTES[i]!] = DIGIT_BYTES[(i + 1) % DIGITS.length]!;
const COUNTER_DIGITS = 8;
const ZERO = DIGIT_BYTES[0]!;

export class RequestIds {
  /** The last id handed out. */
  private readonly last: Buffer;
  private readonly counterAt: number;
  /** Bytes per id (all ids of one proxy have the same length). */
  readonly length: number;

  constructor(region: string, base = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`) {
    this.last = Buffer.from(`${base}${'0'.repeat(COUNTER_DIGITS)}-${region}`, 'latin1');
    this.counterAt = base.length;
    this.length = this.last.length;
    // The first `next` answers counter 0.
    this.last[this.counterAt + COUNTER_DIGITS - 1] = DIGIT_BYTES[DIGITS.length - 1]!;
    for (let i = this.counterAt; i < this.counterAt + COUNTER_DIGITS - 1; i++) this.last[i] = DIGIT_BYTES[DIGITS.length - 1]!;
  }

  /** Writes the next id into `into` (from 0; `into` holds at least `length` bytes). */
  next(into: Buffer): void {
    const last = this.last;
    for (let i = this.counterAt + COUNTER_DIGITS - 1; i >= this.counterAt; i--) {
      const d = NEXT_DIGIT[last[i]!]!;
      last[i] = d;
      if (d !== ZERO) break; // no carry
    }
    for (let i = 0; i < this.length; i++) into[i] = last[i]!;
  }
}
