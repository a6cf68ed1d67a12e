// The masking keys of the WebSocket frames we send as a client: the operator client's, and a
// node's to its peers (whose frames carry values clients chose).
//
// RFC 6455 §5.3 has a client mask every frame with a fresh, unpredictable key so that bytes a
// script chose never cross an intermediary (a transparent proxy, a cache) as written: that is
// the attack masking defends against. Over TLS no intermediary can read the bytes, and a
// connection to this machine's loopback passes through none, so there a frame gets a zero key,
// which ws sends as it is — without copying and XOR-ing every frame, which was half of a busy
// load generator's CPU per put (BENCHMARKS.md). Everywhere else each key is random.

import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { type ClientOptions, WebSocket } from 'ws';
import { isLoopbackHost } from './loopback.js';

/** A ws client socket whose frames get their keys from FrameMasks: the one way we dial. */
export function maskedWebSocket(url: string, options: ClientOptions): WebSocket {
  const masks = new FrameMasks();
  const ws = new WebSocket(url, { ...options, generateMask: masks.generate });
  ws.on('upgrade', (res) => masks.connectedTo(res.socket));
  return ws;
}

/** Whether frames to `remoteAddress` (unknown: undefined) need random masking keys. */
export function needsRandomMask(remoteAddress: string | undefined, tls: boolean): boolean {
  return !tls && (remoteAddress === undefined || !isLoopbackHost(remoteAddress));
}

/** One connection's keys: random until the far end is known to need none. */
export class FrameMasks {
  private random = true;

  /**
   * Decides from the connection's socket, once the handshake is answered (ws's 'upgrade',
   * which comes before 'open' and so before any frame): its far end and whether it is TLS.
   */
  connectedTo(socket: Socket): void {
    this.random = needsRandomMask(socket.remoteAddress, socket instanceof TLSSocket);
  }

  /** ws's `generateMask`: fills the 4-byte key of the frame about to be sent. */
  readonly generate = (key: Buffer): void => {
    if (this.random) randomKey(key);
    else key.fill(0);
  };
}

/** Random bytes drawn a pool at a time, as ws draws its own: not a system call per frame. */
const pool = Buffer.alloc(8192);
let poolUsed = pool.length;

function randomKey(key: Buffer): void {
  if (poolUsed === pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  pool.copy(key, 0, poolUsed, poolUsed + 4);
  poolUsed += 4;
}
