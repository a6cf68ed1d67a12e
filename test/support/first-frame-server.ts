// A bare TCP server on 127.0.0.1 that answers one WebSocket handshake (any path, any headers)
// and hands back the first frame the client then sends, as its bytes crossed the wire: what
// a ws server would unmask before anyone could look at the key.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';

/** RFC 6455's GUID, which the server's accept key hashes with the client's key. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface FirstFrameServer {
  address: string;
  firstFrame: Promise<Buffer>;
  close(): Promise<void>;
}

export async function firstFrameServer(): Promise<FirstFrameServer> {
  let gotFrame!: (b: Buffer) => void;
  const firstFrame = new Promise<Buffer>((resolve) => {
    gotFrame = resolve;
  });
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /^sec-websocket-key:\s*(\S+)/im.exec(buf.subarray(0, end).toString())?.[1] ?? '';
        const accept = createHash('sha1').update(`${key}${WS_GUID}`).digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      // A client's frame: 2 header bytes, 2 more for a length of 126–65,535, a 4-byte key.
      if (buf.length < 4) return;
      const short = buf[1]! & 0x7f;
      const total = short === 126 ? 8 + buf.readUInt16BE(2) : 6 + short;
      if (buf.length >= total) gotFrame(buf.subarray(0, total));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    firstFrame,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A client's frame as firstFrameServer gives it: its opcode, masking key (hex) and payload as sent. */
export function readClientFrame(frame: Buffer): { opcode: number; key: string; wirePayload: Buffer } {
  if ((frame[1]! & 0x80) === 0) throw new Error('a client frame without the mask bit (RFC 6455 requires it)');
  const at = (frame[1]! & 0x7f) === 126 ? 4 : 2;
  return {
    opcode: frame[0]! & 0x0f,
    key: frame.subarray(at, at + 4).toString('hex'),
    wirePayload: frame.subarray(at + 4),
  };
}
