// The user's raftctl settings, stored by `conf` in $XDG_CONFIG_HOME/raftctl/config.json
// (~/.config/raftctl/config.json by default). Every value is validated twice: when
// `raftctl config set` writes it (a bad value is refused, naming the valid range) and when
// it is read (a hand-edited bad value is ignored with a warning instead of breaking commands).
import Conf from 'conf';
import { buildKeymap, KeymapError } from '../ui/keymap.js';
import { formatHostPort, parseEndpoints, parseHostPort, UsageError } from './args.js';

export const THEMES = ['dark', 'light', 'mono'] as const;
export type Theme = (typeof THEMES)[number];

export interface Settings {
  /** Nodes started by `raftctl up` without N. */
  clusterSize: number;
  /** First port tried by `raftctl up`; 0 means any free port. */
  basePort: number;
  /** Raft tick of nodes started by `raftctl up`. */
  tickMs: number;
  theme: Theme;
  /** Console key overrides: action name → key. */
  keys: Record<string, string>;
  /** Operator token per endpoint (`host:port`). */
  tokens: Record<string, string>;
  /** Endpoints recently attached to or started, newest first. */
  recentEndpoints: string[];
  /** Data dir of the cluster last started with `raftctl up`. */
  lastCluster: string | undefined;
}

export const DEFAULT_SETTINGS: Settings = {
  clusterSize: 3,
  basePort: 0,
  tickMs: 100,
  theme: 'dark',
  keys: {},
  tokens: {},
  recentEndpoints: [],
  lastCluster: undefined,
};

export const MAX_CLUSTER_SIZE = 15;
const MAX_RECENT = 10;

/** What the stored JSON looks like (flat keys: endpoints contain dots, so no dot paths). */
type Store = Partial<Settings> & Record<string, unknown>;

/** A key as `raftctl config` names it, with its parser and help text. */
interface Spec {
  describe: string;
  /** Returns the value to store under `field` or throws UsageError naming the valid range. */
  parse(text: string): unknown;
}

const intIn =
  (name: string, min: number, max: number, extra?: (n: number) => boolean, hint = `${min}–${max}`) =>
  (text: string): number => {
    const n = Number(text.trim());
    if (!/^\d+$/.test(text.trim()) || (!(n >= min && n <= max) && !extra?.(n))) {
      throw new UsageError(`bad value ${JSON.stringify(text)} for ${name}: expected a whole number ${hint}`);
    }
    return n;
  };

/** Key names the console understands (src/ui/keymap.ts keyName, plus its aliases). */
const KEY_RE =
  /^(?:ctrl\+[!-~]|[!-~]|up|down|left|right|pageup|pagedown|home|end|return|enter|escape|esc|tab|backspace|delete|space)$/;

export const SETTING_SPECS: Record<string, Spec & { field: keyof Settings }> = {
  'cluster-size': {
    field: 'clusterSize',
    describe: `nodes started by \`raftctl up\` without N (1–${MAX_CLUSTER_SIZE})`,
    parse: intIn('cluster-size', 1, MAX_CLUSTER_SIZE),
  },
  'base-port': {
    field: 'basePort',
    describe: 'first port `raftctl up` tries (0 = any free port, else 1024–65000)',
    parse: intIn('base-port', 1024, 65000, (n) => n === 0, '0 (any free port) or 1024–65000'),
  },
  'tick-ms': {
    field: 'tickMs',
    describe: 'Raft tick of nodes started by `raftctl up`, in ms (1–10000)',
    parse: intIn('tick-ms', 1, 10_000),
  },
  theme: {
    field: 'theme',
    describe: `console colours (${THEMES.join(', ')})`,
    parse: (text) => {
      if (!(THEMES as readonly string[]).includes(text)) {
        throw new UsageError(
          `bad value ${JSON.stringify(text)} for theme: expected one of ${THEMES.join(', ')}`,
        );
      }
      return text;
    },
  },
  'recent-endpoints': {
    field: 'recentEndpoints',
    describe: 'endpoints recently used, newest first (HOST:PORT,…; empty to clear)',
    parse: (text) => (text.trim() === '' ? [] : parseEndpoints([text]).slice(0, MAX_RECENT)),
  },
};

/** `keys.<action>` and `token.<HOST:PORT>` are families of keys. */
export const KEY_FAMILIES = {
  keys: 'keys.COMMAND: console key(s) for COMMAND, e.g. keys.kill K or keys.quit q,ctrl+c (see the console help)',
  token: 'token.HOST:PORT: operator token sent to that endpoint',
} as const;

/**
 * Checks a console key override: each key (comma-separated) must be one the console can
 * read, and the whole keymap with this override must bind no key twice (the console's own
 * check, so the two never disagree).
 */
export function parseKeyBinding(action: string, keys: string, others: Record<string, string> = {}): string {
  for (const key of keys.split(',').map((k) => k.trim())) {
    if (!KEY_RE.test(key)) {
      throw new UsageError(
        `bad key ${JSON.stringify(key)} for keys.${action}: expected one printable character (e.g. K), ctrl+ and a character, ` +
          'or one of up down left right pageup pagedown home end return escape tab backspace space (several: comma-separated)',
      );
    }
  }
  try {
    buildKeymap({ ...others, [action]: keys });
  } catch (err) {
    if (err instanceof KeymapError) throw new UsageError(err.message.replace(/^settings\./, ''));
    throw err;
  }
  return keys;
}

function withSuffix(key: string, prefix: string): string | undefined {
  return key.startsWith(`${prefix}.`) ? key.slice(prefix.length + 1) : undefined;
}

/** All keys `raftctl config` knows, for help and completion. */
export function settingKeys(): string[] {
  return [...Object.keys(SETTING_SPECS), 'keys.COMMAND', 'token.HOST:PORT'];
}

/** Checks stored values one by one; bad ones fall back to the default and are reported. */
export function validateStore(store: Readonly<Record<string, unknown>>): {
  settings: Settings;
  problems: string[];
} {
  const settings: Settings = { ...DEFAULT_SETTINGS, keys: {}, tokens: {}, recentEndpoints: [] };
  const problems: string[] = [];
  const scalar = (name: string, field: 'clusterSize' | 'basePort' | 'tickMs' | 'theme') => {
    const v = store[field];
    if (v === undefined) return;
    try {
      (settings as unknown as Record<string, unknown>)[field] = SETTING_SPECS[name]!.parse(String(v));
    } catch (err) {
      problems.push(`${(err as Error).message} (ignored)`);
    }
  };
  scalar('cluster-size', 'clusterSize');
  scalar('base-port', 'basePort');
  scalar('tick-ms', 'tickMs');
  scalar('theme', 'theme');
  if (isStringRecord(store.keys)) {
    for (const [action, key] of Object.entries(store.keys)) {
      try {
        settings.keys[action] = parseKeyBinding(action, key, settings.keys);
      } catch (err) {
        problems.push(`${(err as Error).message} (ignored)`);
      }
    }
  } else if (store.keys !== undefined) problems.push('keys must be an object of action → key (ignored)');
  if (isStringRecord(store.tokens)) settings.tokens = { ...store.tokens };
  else if (store.tokens !== undefined)
    problems.push('tokens must be an object of endpoint → token (ignored)');
  if (Array.isArray(store.recentEndpoints)) {
    settings.recentEndpoints = store.recentEndpoints.filter((e): e is string => typeof e === 'string');
  }
  if (typeof store.lastCluster === 'string') settings.lastCluster = store.lastCluster;
  return { settings, problems };
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === 'string')
  );
}

/** The settings file, opened lazily so commands that never need it never touch the disk. */
export class SettingsStore {
  private conf: Conf<Store> | undefined;

  private open(): Conf<Store> {
    this.conf ??= new Conf<Store>({
      projectName: 'raftctl',
      projectSuffix: '',
      accessPropertiesByDotNotation: false,
    });
    return this.conf;
  }

  get path(): string {
    return this.open().path;
  }

  /** Reads and validates; problems are reported once on stderr by the caller. */
  load(): { settings: Settings; problems: string[] } {
    let store: Store;
    try {
      store = this.open().store;
    } catch (err) {
      return {
        settings: { ...DEFAULT_SETTINGS },
        problems: [`cannot read settings: ${(err as Error).message} (using defaults)`],
      };
    }
    return validateStore(store);
  }

  /** Sets a key as `raftctl config set` names it; throws UsageError for unknown keys or bad values. */
  set(key: string, text: string): unknown {
    const conf = this.open();
    const spec = SETTING_SPECS[key];
    if (spec) {
      const value = spec.parse(text);
      conf.set(spec.field, value);
      return value;
    }
    const action = withSuffix(key, 'keys');
    if (action !== undefined) {
      const keys = {
        ...(isStringRecord(conf.get('keys')) ? (conf.get('keys') as Record<string, string>) : {}),
      };
      keys[action] = parseKeyBinding(action, text, keys);
      conf.set('keys', keys);
      return text;
    }
    const endpoint = withSuffix(key, 'token');
    if (endpoint !== undefined) {
      const ep = formatHostPort(parseHostPort(endpoint, 'endpoint in token.HOST:PORT'));
      if (text === '') throw new UsageError(`empty token for ${ep}: use 'raftctl config unset token.${ep}'`);
      const tokens = {
        ...(isStringRecord(conf.get('tokens')) ? (conf.get('tokens') as Record<string, string>) : {}),
      };
      tokens[ep] = text;
      conf.set('tokens', tokens);
      return text;
    }
    throw unknownKey(key);
  }

  unset(key: string): void {
    const conf = this.open();
    const spec = SETTING_SPECS[key];
    if (spec) {
      conf.delete(spec.field);
      return;
    }
    for (const [prefix, field] of [
      ['keys', 'keys'],
      ['token', 'tokens'],
    ] as const) {
      const sub = withSuffix(key, prefix);
      if (sub === undefined) continue;
      const map = { ...(isStringRecord(conf.get(field)) ? (conf.get(field) as Record<string, string>) : {}) };
      const name =
        prefix === 'token' ? formatHostPort(parseHostPort(sub, 'endpoint in token.HOST:PORT')) : sub;
      delete map[name];
      conf.set(field, map);
      return;
    }
    throw unknownKey(key);
  }

  /** Remembers endpoints as most recent (deduplicated, capped). Never fails a command. */
  rememberEndpoints(endpoints: readonly string[]): void {
    try {
      const { settings } = this.load();
      const next = [...endpoints, ...settings.recentEndpoints.filter((e) => !endpoints.includes(e))];
      this.open().set('recentEndpoints', next.slice(0, MAX_RECENT));
    } catch {
      // Settings are a convenience; an unwritable config dir must not fail the command.
    }
  }

  rememberCluster(dir: string): void {
    try {
      this.open().set('lastCluster', dir);
    } catch {
      // As above.
    }
  }
}

/** Reads one key as `raftctl config get` names it. */
export function getSetting(settings: Settings, key: string): unknown {
  const spec = SETTING_SPECS[key];
  if (spec) return settings[spec.field];
  const action = withSuffix(key, 'keys');
  if (action !== undefined) return settings.keys[action];
  const endpoint = withSuffix(key, 'token');
  if (endpoint !== undefined) {
    return settings.tokens[formatHostPort(parseHostPort(endpoint, 'endpoint in token.HOST:PORT'))];
  }
  throw unknownKey(key);
}

/** Every setting as `key → value`, tokens masked (they are secrets; `config get token.X` shows one). */
export function listSettings(settings: Settings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SETTING_SPECS)) out[key] = settings[spec.field];
  for (const [action, key] of Object.entries(settings.keys)) out[`keys.${action}`] = key;
  for (const ep of Object.keys(settings.tokens)) out[`token.${ep}`] = '(set)';
  return out;
}

function unknownKey(key: string): UsageError {
  return new UsageError(
    `unknown setting ${JSON.stringify(key)}: known settings are ${settingKeys().join(', ')}`,
  );
}
