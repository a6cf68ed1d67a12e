import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_VARINT_BYTES,
  VARINT_NON_CANONICAL,
  VARINT_TOO_LARGE,
  VARINT_TOO_LONG,
  VARINT_TRUNCATED,
  VarintCursor,
  varintSize,
  writeVarint,
} from '../../src/protocol/varint.js';

describe('varints', () => {
  it('read back every safe integer written, in varintSize bytes, at any offset', () => {
    const safe = fc.oneof(
      fc.integer({ min: 0, max: 300 }),
      fc.integer({ min: 2 ** 31 - 2, max: 2 ** 32 + 2 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    );
    fc.assert(
      fc.property(safe, fc.nat(5), (v, at) => {
        const buf = new Uint8Array(at + MAX_VARINT_BYTES).fill(0xee);
        const end = writeVarint(buf, at, v);
        expect(end - at).toBe(varintSize(v));
        const cursor = new VarintCursor(buf.subarray(0, end), at);
        expect(cursor.readVarint()).toBe(v);
        expect(cursor.pos).toBe(end);
      }),
    );
  });

  it('say why there is no number: truncated, padded, beyond 2^53-1, longer than 8 bytes', () => {
    const read = (bytes: Uint8Array, at = 0) => new VarintCursor(bytes, at).readVarint();
    expect(read(Uint8Array.of(0x81))).toBe(VARINT_TRUNCATED);
    expect(read(Uint8Array.of(5), 1)).toBe(VARINT_TRUNCATED);
    // 1 written as two bytes: a second encoding of the same number.
    expect(read(Uint8Array.of(0x81, 0x00))).toBe(VARINT_NON_CANONICAL);
    // 2^53 needs 8 bytes, the last one 0x10.
    expect(read(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10))).toBe(VARINT_TOO_LARGE);
    expect(read(new Uint8Array(9).fill(0x81))).toBe(VARINT_TOO_LONG);
  });
});
