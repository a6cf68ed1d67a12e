// Masking keys: zero where no intermediary can read the frames (loopback, TLS), random
// elsewhere, decided per connection. That the client and the transport use them on the wire:
// test/client/client.test.ts and test/server/transport/transport.test.ts.
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { FrameMasks, needsRandomMask } from '../../src/protocol/frame-mask.js';

/** A plain TCP socket as FrameMasks sees it: only its far end's address is read. */
function socketTo(remoteAddress: string): Socket {
  return { remoteAddress } as Socket;
}

/** `n` keys as hex, drawn the way ws draws one before each frame. */
function keys(masks: FrameMasks, n: number): string[] {
  return Array.from({ length: n }, () => {
    const key = Buffer.alloc(4, 0xee);
    masks.generate(key);
    return key.toString('hex');
  });
}

describe('needsRandomMask', () => {
  it.each([
    ['127.0.0.1', false, false],
    ['::1', false, false],
    ['::ffff:127.0.0.1', false, false],
    ['10.0.0.7', false, true],
    ['::ffff:192.168.1.2', false, true],
    ['2001:db8::1', false, true],
    [undefined, false, true],
    ['10.0.0.7', true, false],
    [undefined, true, false],
  ])('%s, TLS %s → random %s', (address, tls, random) => {
    expect(needsRandomMask(address, tls)).toBe(random);
  });
});

describe('FrameMasks', () => {
  it('draws random, distinct keys until the far end is known, and for one beyond loopback', () => {
    const masks = new FrameMasks();
    const beforeConnect = keys(masks, 3000);
    masks.connectedTo(socketTo('10.0.0.7'));
    for (const drawn of [beforeConnect, keys(masks, 3000)]) {
      // 3,000 keys of 32 random bits: a repeat has odds of about 1 in 1,000; 50 would mean a broken source.
      expect(new Set(drawn).size).toBeGreaterThan(2950);
      expect(drawn).not.toContain('00000000');
      expect(drawn).not.toContain('eeeeeeee');
    }
  });

  it('gives zero keys on a loopback or TLS connection', () => {
    const loopback = new FrameMasks();
    loopback.connectedTo(socketTo('127.0.0.1'));
    expect(new Set(keys(loopback, 10))).toEqual(new Set(['00000000']));
    // An unconnected TLS socket: the far end unknown, but nothing on the way could read the bytes.
    const tls = new FrameMasks();
    tls.connectedTo(new TLSSocket(new Socket()));
    expect(new Set(keys(tls, 10))).toEqual(new Set(['00000000']));
  });
});
