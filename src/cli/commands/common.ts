// Options and plumbing shared by the scripting commands: how to find the cluster, --json,
// --timeout, colour, and the settings file.
import type { Argv } from 'yargs';
import { parseDuration } from '../args.js';
import { ClusterSession, resolveTarget, type Target, type TlsFlags } from '../connect.js';
import { EXIT } from '../exit.js';
import { colorEnabled, type Painter, painter } from '../format.js';
import { type Settings, SettingsStore } from '../settings.js';

export const settingsStore = new SettingsStore();

let loaded: Settings | undefined;
/** The settings, read once per run; problems with the file are warnings, never failures. */
export function settings(): Settings {
  if (loaded === undefined) {
    const { settings: s, problems } = settingsStore.load();
    for (const p of problems)
      process.stderr.write(`raftctl: warning: settings (${settingsStore.path}): ${p}\n`);
    loaded = s;
  }
  return loaded;
}

/** Data: stdout. */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Messages: stderr. */
export function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value));
}

export interface ColorArgs {
  color?: boolean;
}

export function paintFor(argv: ColorArgs, stream: NodeJS.WriteStream = process.stdout): Painter {
  return painter(
    colorEnabled({ flag: argv.color !== false, isTTY: stream.isTTY === true, env: process.env }),
  );
}

const TLS_FLAGS = ['tls-ca', 'tls-cert', 'tls-key'] as const;

/** --tls-ca, --tls-cert, --tls-key: how to dial nodes over TLS (read with tlsFromFlags). */
export function tlsOptions<T>(y: Argv<T>) {
  return y
    .option('tls-ca', {
      type: 'string',
      describe: 'Connect over TLS (wss://), trusting this PEM CA (nodes started with --tls-cert)',
    })
    .option('tls-cert', {
      type: 'string',
      describe: 'PEM client certificate, for nodes that require one (--tls-ca on the node)',
    })
    .option('tls-key', { type: 'string', describe: 'PEM private key of --tls-cert' });
}

/** --endpoints, --token, --name, --data-dir, --timeout, --tls-*: which cluster a command talks to. */
export function targetOptions<T>(y: Argv<T>) {
  const base = y
    .option('endpoints', {
      alias: 'e',
      type: 'string',
      describe:
        'HOST:PORT[,HOST:PORT…] of any members (default: RAFTCTL_ENDPOINTS, else the cluster last started with `up`)',
    })
    .option('token', {
      type: 'string',
      describe: 'Operator token (default: RAFTCTL_TOKEN, else per endpoint from settings)',
    })
    .option('name', { type: 'string', describe: 'A cluster started by `up` under this name' })
    .option('data-dir', { type: 'string', describe: 'A cluster started by `up` with this --data-dir' })
    .option('timeout', {
      type: 'string',
      default: '10s',
      describe: 'Give up after this long (e.g. 500ms, 10s)',
    });
  return tlsOptions(base).group(
    ['endpoints', 'token', 'name', 'data-dir', 'timeout', ...TLS_FLAGS],
    'Cluster:',
  );
}

export function jsonOption<T>(y: Argv<T>) {
  return y.option('json', {
    type: 'boolean',
    default: false,
    describe: 'Print JSON (a stable shape, see README)',
  });
}

export interface TargetArgs extends TlsFlags {
  endpoints?: string | string[] | undefined;
  token?: string | undefined;
  name?: string | undefined;
  'data-dir'?: string | undefined;
  timeout?: string | undefined;
}

export function targetOf(argv: TargetArgs): Target {
  return resolveTarget(argv, settings());
}

export function timeoutOf(argv: TargetArgs): number {
  return parseDuration(argv.timeout ?? '10s', '--timeout', 3_600_000);
}

/** Opens a session, runs `fn`, and always closes the session. */
export async function withSession<R>(
  argv: TargetArgs,
  fn: (s: ClusterSession, target: Target) => Promise<R>,
): Promise<R> {
  const target = targetOf(argv);
  const session = await ClusterSession.open(target, {
    timeoutMs: timeoutOf(argv),
    tokens: settings().tokens,
  });
  try {
    return await fn(session, target);
  } finally {
    await session.close();
  }
}

// ---------------------------------------------------------------------------------------
// Interrupts: Ctrl-C (and SIGTERM/SIGHUP) exit with 130 unless a command needs to clean up
// first; a second signal exits at once.

let onSignal: (() => void) | undefined;
let signals = 0;
let lastSignalAt = 0;

export function installInterruptHandlers(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // One Ctrl-C arrives twice once conf is loaded: its atomic writes (when-exit, through
      // atomically) listen once for each signal and raise it again, so a check perf stopped
      // with Ctrl-C exited before it cleaned up. A second press is one more than 250 ms after
      // the first, as `raftctl node` counts them.
      const now = Date.now();
      if (signals > 0 && now - lastSignalAt <= 250) return;
      signals++;
      lastSignalAt = now;
      if (signals > 1 || onSignal === undefined) process.exit(EXIT.interrupted);
      onSignal();
    });
  }
}

/** Replaces the default (exit 130) with `fn`, which should end by exiting. */
export function onInterrupt(fn: (() => void) | undefined): void {
  onSignal = fn;
}
