// Unit checks behind the security rules of issue 7: the byte-size limits on keys and values,
// and TLS control URLs (what counts as loopback: test/protocol/loopback.test.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ControlError, controlUrl } from '../../src/client/client.js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES, parseCommandArgs, utf8Length } from '../../src/protocol/control.js';

describe('key and value size limits', () => {
  it('utf8Length agrees with Buffer.byteLength (lone surrogates as U+FFFD)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string()),
        (s) => {
          expect(utf8Length(s)).toBe(Buffer.byteLength(s));
        },
      ),
      { numRuns: 500 },
    );
    expect(utf8Length('\ud800')).toBe(Buffer.byteLength('\ud800'));
    expect(utf8Length('a\udc00b')).toBe(Buffer.byteLength('a\udc00b'));
  });

  it('refuses keys over 4 KiB and values over 1 MiB of UTF-8, naming the field', () => {
    expect(parseCommandArgs('put', { key: 'k'.repeat(MAX_KEY_BYTES), value: '' }).ok).toBe(true);
    const longKey = parseCommandArgs('put', { key: 'k'.repeat(MAX_KEY_BYTES + 1), value: '' });
    expect(longKey).toMatchObject({ ok: false, field: 'args.key' });
    // 2 bytes per character: under the limit in characters, over it in bytes.
    const wideKey = parseCommandArgs('get', { key: 'é'.repeat(MAX_KEY_BYTES / 2 + 1) });
    expect(wideKey).toMatchObject({ ok: false, field: 'args.key' });
    expect(parseCommandArgs('put', { key: 'k', value: 'v'.repeat(MAX_VALUE_BYTES) }).ok).toBe(true);
    const bigValue = parseCommandArgs('cas', {
      key: 'k',
      expected: 'v'.repeat(MAX_VALUE_BYTES + 1),
      value: '',
    });
    expect(bigValue).toMatchObject({ ok: false, field: 'args.expected' });
    expect(parseCommandArgs('propose', { data: '€'.repeat(MAX_VALUE_BYTES / 3 + 1) })).toMatchObject({
      ok: false,
      field: 'args.data',
    });
  });
});

describe('controlUrl', () => {
  it('uses wss for bare addresses when secure, and maps https to wss', () => {
    expect(controlUrl('10.0.0.1:7001')).toBe('ws://10.0.0.1:7001/control');
    expect(controlUrl('10.0.0.1:7001', true)).toBe('wss://10.0.0.1:7001/control');
    expect(controlUrl('https://10.0.0.1:7001')).toBe('wss://10.0.0.1:7001/control');
    expect(controlUrl('wss://[::1]:7001/')).toBe('wss://[::1]:7001/control');
    // An explicit scheme wins over the secure default.
    expect(controlUrl('ws://10.0.0.1:7001', true)).toBe('ws://10.0.0.1:7001/control');
    expect(() => controlUrl('ftp://x:1')).toThrow(ControlError);
  });
});
