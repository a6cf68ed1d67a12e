// The core reports what it decides through a Logger the host provides; it never writes
// anywhere by itself. `panic` marks a broken invariant: it must throw.

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Reports a violated invariant and throws; the core never continues after it. */
  panic(msg: string): never;
}

export class RaftPanic extends Error {
  override name = 'RaftPanic';
}

/** Discards everything but panics, which still throw. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  panic(msg: string): never {
    throw new RaftPanic(msg);
  },
};
