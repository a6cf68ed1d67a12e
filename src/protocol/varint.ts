// Unsigned LEB128 varints of JS safe integers: 7 bits a byte, low bits first, the top bit
// set on every byte but the last. Binary client frames (protocol/binary.ts) and KV commands
// and snapshots read and write them with these; WAL records write with them (their reader,
// which tolerates padding, is the WAL's own; the peer codec has 64-bit ids of its own too).
//
// The reader takes only the canonical encoding (no padding zero byte at the end), so a
// number has exactly one encoding.

/** The most bytes a varint of a safe integer takes (2^53 needs 8 groups of 7 bits). */
export const MAX_VARINT_BYTES = 8;

/** Why VarintCursor.readVarint found no number; it returns one of these (all negative) instead. */
export const VARINT_TRUNCATED = -1;
export const VARINT_NON_CANONICAL = -2;
export const VARINT_TOO_LARGE = -3;
export const VARINT_TOO_LONG = -4;

/** Bytes of the encoding of v. */
export function varintSize(v: number): number {
  // Most numbers in these formats are small: compares, not divisions.
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  let n = 4;
  for (let rest = Math.floor(v / 0x10000000); rest > 0; rest = Math.floor(rest / 0x80)) n++;
  return n;
}

/** Writes v at buf[pos] (the caller made room); returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  let at = pos;
  let rest = v;
  // Above 2^31 bit operations would wrap, so the slow path divides.
  while (rest > 0x7fffffff) {
    buf[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  while (rest >= 0x80) {
    buf[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  buf[at++] = rest;
  return at;
}

/** A read position in bytes that hold varints; the formats' readers build on it. */
export class VarintCursor {
  constructor(
    public buf: Uint8Array,
    public pos = 0,
  ) {}

  /**
   * The varint at `pos`, moving past it; or a negative VARINT_* code saying why there is
   * none (`pos` is then where it was).
   */
  readVarint(): number {
    const buf = this.buf;
    const start = this.pos;
    // Most numbers in these formats (lengths, small counts) take one byte.
    if (start < buf.length && buf[start]! < 0x80) {
      this.pos = start + 1;
      return buf[start]!;
    }
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const at = start + i;
      if (at >= buf.length) return VARINT_TRUNCATED;
      const b = buf[at]!;
      // A zero last byte after the first pads the number: one value, one encoding.
      if (b === 0 && i > 0) return VARINT_NON_CANONICAL;
      value += (b & 0x7f) * scale;
      if (value > Number.MAX_SAFE_INTEGER) return VARINT_TOO_LARGE;
      if ((b & 0x80) === 0) {
        this.pos = at + 1;
        return value;
      }
      scale *= 0x80;
    }
    return VARINT_TOO_LONG;
  }
}
