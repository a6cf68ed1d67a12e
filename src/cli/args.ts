// Parsing and validation of the CLI's structured arguments. Each error says what was
// wrong and what a valid value looks like, so a person can fix the command line.

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port` (IPv6 as `[::1]:7001`). */
export function parseHostPort(text: string, what = 'address'): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  if (!m)
    throw new UsageError(`bad ${what} ${JSON.stringify(text)}: expected HOST:PORT, e.g. 127.0.0.1:7001`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535)
    throw new UsageError(`bad ${what} ${JSON.stringify(text)}: port must be 1–65535`);
  return { host: m[1] ?? m[2]!, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

export function parseNodeId(text: string | number, what = 'node id'): number {
  const s = String(text).trim();
  if (!/^\d+$/.test(s) || Number(s) < 1 || !Number.isSafeInteger(Number(s))) {
    throw new UsageError(`bad ${what} ${JSON.stringify(s)}: expected a positive integer, e.g. 1`);
  }
  return Number(s);
}

/** Parses `1=127.0.0.1:7001,2=127.0.0.1:7002` into id → address. */
export function parsePeers(text: string): Map<number, string> {
  const peers = new Map<number, string>();
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0)
    throw new UsageError('--peers is empty: expected ID=HOST:PORT[,ID=HOST:PORT…], e.g. 1=127.0.0.1:7001');
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 0)
      throw new UsageError(
        `bad peer ${JSON.stringify(item)} in --peers: expected ID=HOST:PORT, e.g. 2=127.0.0.1:7002`,
      );
    const id = parseNodeId(item.slice(0, eq), 'peer id');
    const address = formatHostPort(parseHostPort(item.slice(eq + 1), `address of peer ${id}`));
    if (peers.has(id)) throw new UsageError(`peer ${id} appears twice in --peers`);
    peers.set(id, address);
  }
  return peers;
}

export function parsePositiveInt(
  value: unknown,
  flag: string,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(
      `bad ${flag} ${JSON.stringify(value)}: expected a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** Parses a size in bytes: a whole number, optionally followed by B, KiB, MiB or GiB (`64MiB`). */
export function parseByteSize(value: unknown, flag: string, min = 1): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(String(value));
  const unit = m === null ? undefined : BYTE_UNITS[m[2]!.toLowerCase()];
  const n = m === null || unit === undefined ? Number.NaN : Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `bad ${flag} ${JSON.stringify(value)}: expected a size of at least ${min} byte${min === 1 ? '' : 's'}, as bytes or with a unit (KiB, MiB, GiB), e.g. 64MiB`,
    );
  }
  return n;
}

/**
 * Parses endpoint lists as given to --endpoints, RAFTCTL_ENDPOINTS or positional arguments:
 * each item may itself be a comma-separated list. Returns normalised `host:port` strings,
 * without duplicates, in the order given.
 */
export function parseEndpoints(items: readonly string[], what = 'endpoint'): string[] {
  const out: string[] = [];
  for (const item of items) {
    for (const part of item.split(',')) {
      const s = part.trim();
      if (s === '') continue;
      const ep = formatHostPort(parseHostPort(s, what));
      if (!out.includes(ep)) out.push(ep);
    }
  }
  if (out.length === 0) throw new UsageError(`no ${what} given: expected HOST:PORT[,HOST:PORT…]`);
  return out;
}

/** Cluster names become directory names, so they are kept to a portable alphabet. */
export function parseClusterName(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(text)) {
    throw new UsageError(
      `bad --name ${JSON.stringify(text)}: use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return text;
}

/** Parses `2,3` into node ids. */
export function parseIdList(text: string, what = '--peers'): number[] {
  const ids = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => parseNodeId(s, `id in ${what}`));
  if (ids.length === 0) throw new UsageError(`${what} is empty: expected ID[,ID…], e.g. 2,3`);
  return [...new Set(ids)];
}

/** A probability written as 0.3 or 30%. */
export function parseProbability(text: string | number, what = 'probability'): number {
  const s = String(text).trim();
  const pct = s.endsWith('%');
  const n = Number(pct ? s.slice(0, -1) : s);
  const p = pct ? n / 100 : n;
  if (s === '' || !Number.isFinite(n) || p < 0 || p > 1) {
    throw new UsageError(`bad ${what} ${JSON.stringify(s)}: expected 0–1 (e.g. 0.3) or 0–100% (e.g. 30%)`);
  }
  return p;
}

/** A duration written as 200, 200ms, 1.5s or 2m; returns milliseconds. */
export function parseDuration(text: string | number, what: string, maxMs = 600_000): number {
  const s = String(text).trim();
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  const unit = m?.[2] ?? 'ms';
  const ms = m ? Math.round(Number(m[1]) * (unit === 's' ? 1000 : unit === 'm' ? 60_000 : 1)) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0 || ms > maxMs) {
    throw new UsageError(
      `bad ${what} ${JSON.stringify(s)}: expected a duration from 0 to ${maxMs} ms, e.g. 200, 200ms, 1.5s`,
    );
  }
  return ms;
}
