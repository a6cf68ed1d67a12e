// The node's logger: one line per event, to a file in the data dir and to stderr, with a
// configurable level. The Raft core logs through the same interface (its Logger), so
// elections and conflicts appear in the node's log next to WAL and transport events.
import { appendFileSync, openSync } from 'node:fs';
import { type Logger, RaftPanic } from '../raft/logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface ServerLogger extends Logger {
  /** A logger whose lines are tagged with a component (`wal`, `transport`, `raft`, …). */
  child(component: string): ServerLogger;
}

export interface LogLine {
  level: LogLevel;
  component: string;
  message: string;
}

export interface LogSinkOptions {
  level: LogLevel;
  /** Appended to synchronously so a crash never loses the line explaining it. */
  file?: string;
  stderr?: boolean;
  /** Sees every line at or above the level (the operator API streams them as events). */
  onLine?: (line: LogLine) => void;
}

export function createLogger(opts: LogSinkOptions, component = 'node'): ServerLogger {
  const fd = opts.file === undefined ? undefined : openSync(opts.file, 'a');
  const write = (level: LogLevel, comp: string, message: string): void => {
    if (RANK[level] < RANK[opts.level]) return;
    const text = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${comp}] ${message}\n`;
    if (fd !== undefined) appendFileSync(fd, text);
    if (opts.stderr) process.stderr.write(text);
    opts.onLine?.({ level, component: comp, message });
  };
  return makeLogger(component, write);
}

function makeLogger(component: string, write: (l: LogLevel, c: string, m: string) => void): ServerLogger {
  return {
    debug: (m) => write('debug', component, m),
    info: (m) => write('info', component, m),
    warn: (m) => write('warn', component, m),
    error: (m) => write('error', component, m),
    panic(m): never {
      write('error', component, `PANIC ${m}`);
      throw new RaftPanic(m);
    },
    child: (c) => makeLogger(c, write),
  };
}

/** A logger for tests: keeps every line (all levels) for assertions. */
export function testLogger(): ServerLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = makeLogger('test', (level, component, message) => {
    lines.push({ level, component, message });
  });
  return Object.assign(logger, { lines });
}
