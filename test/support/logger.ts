// A Raft Logger for tests that keeps every line (`LEVEL message`) for assertions; a
// panic is recorded too and still throws, as the core expects.
import { type Logger, RaftPanic } from '../../src/raft/logger.js';

export interface CollectingLogger extends Logger {
  lines: string[];
}

export function collectingLogger(): CollectingLogger {
  const lines: string[] = [];
  const at = (level: string) => (msg: string) => {
    lines.push(`${level} ${msg}`);
  };
  return {
    lines,
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
    panic(msg: string): never {
      lines.push(`PANIC ${msg}`);
      throw new RaftPanic(msg);
    },
  };
}
