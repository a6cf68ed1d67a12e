// The client's masking keys: zero where no intermediary can read its frames (loopback, TLS),
// random elsewhere — decided per connection, and in place before the first frame leaves.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/client/client.js';
import { FrameMasks, needsRandomMask } from '../../src/client/frame-mask.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

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

/**
 * A bare TCP server that answers one WebSocket handshake and resolves with the raw bytes of
 * the first frame the client sends after it, as they crossed the wire.
 */
async function firstFrameServer(): Promise<{ address: string; firstFrame: Promise<Buffer> }> {
  let gotFrame!: (b: Buffer) => void;
  const firstFrame = new Promise<Buffer>((resolve) => {
    gotFrame = resolve;
  });
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /^sec-websocket-key:\s*(\S+)/im.exec(buf.subarray(0, end).toString())?.[1] ?? '';
        const accept = createHash('sha1')
          .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      if (buf.length < 4) return;
      const short = buf[1]! & 0x7f;
      const total = short === 126 ? 8 + buf.readUInt16BE(2) : 6 + short;
      if (buf.length >= total) gotFrame(buf.subarray(0, total));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, 'close');
  });
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, firstFrame };
}

describe('ControlClient on loopback', () => {
  it('sends its first frame (the hello) with a zero masking key: the payload crosses as written', async () => {
    const { address, firstFrame } = await firstFrameServer();
    const client = new ControlClient();
    cleanups.push(() => client.close());
    // The server never answers the hello, so the connect times out; the frame is what counts.
    const connecting = client.connect(address, { timeoutMs: 2000 }).catch((e: unknown) => e);
    const frame = await firstFrame;
    expect(frame[1]! & 0x80).toBe(0x80); // masked, as RFC 6455 requires of a client…
    const length = frame[1]! & 0x7f;
    const keyAt = length === 126 ? 4 : 2;
    expect(frame.subarray(keyAt, keyAt + 4).toString('hex')).toBe('00000000'); // …with a zero key
    expect(JSON.parse(frame.subarray(keyAt + 4).toString())).toMatchObject({ type: 'hello' });
    await connecting;
  });
});
