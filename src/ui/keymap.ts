// Every key of the console, defined once. The input handler, the `?` help and the footer
// hints are all derived from this table, so they cannot disagree; a unit test asserts that
// no key is bound twice.

export type KeyCategory = 'navigate' | 'view' | 'cluster' | 'faults' | 'membership' | 'replay' | 'console';

export interface KeyBinding {
  command: ConsoleCommand;
  /** Key names as keyName() produces them: a character, or up/down/return/escape/space/… */
  keys: readonly string[];
  description: string;
  category: KeyCategory;
  /** Changes the cluster in a way that is hard to undo; such commands ask for confirmation. */
  dangerous: boolean;
  /** Short label for the footer; commands without one are only listed in the help. */
  hint?: string;
  /** Only meaningful while replaying a recording. */
  replayOnly?: boolean;
  /** Sends something to the cluster, so it is disabled while replaying. */
  live?: boolean;
}

export const CONSOLE_COMMANDS = [
  'select-up',
  'select-down',
  'select-index',
  'open-node',
  'back',
  'pause',
  'scroll-up',
  'scroll-down',
  'scroll-top',
  'scroll-live',
  'filter',
  'help',
  'quit',
  'campaign',
  'transfer',
  'propose',
  'forget-leader',
  'snapshot',
  'command-line',
  'isolate',
  'heal-all',
  'kill',
  'stop',
  'restart',
  'add-node',
  'remove-node',
  'promote',
  'replay-faster',
  'replay-slower',
  'replay-step',
] as const;
export type ConsoleCommand = (typeof CONSOLE_COMMANDS)[number];

export const KEYMAP: readonly KeyBinding[] = [
  {
    command: 'select-up',
    keys: ['up', 'k'],
    description: 'Select the previous node',
    category: 'navigate',
    dangerous: false,
    hint: 'select',
  },
  {
    command: 'select-down',
    keys: ['down', 'j'],
    description: 'Select the next node',
    category: 'navigate',
    dangerous: false,
  },
  {
    command: 'select-index',
    keys: ['1', '2', '3', '4', '5', '6', '7', '8', '9'],
    description: 'Select the n-th node of the table',
    category: 'navigate',
    dangerous: false,
  },
  {
    command: 'open-node',
    keys: ['return'],
    description: "Open the selected node's view",
    category: 'view',
    dangerous: false,
    hint: 'node',
  },
  {
    command: 'back',
    keys: ['escape'],
    description: 'Go back (close a view, prompt or help)',
    category: 'view',
    dangerous: false,
  },
  {
    command: 'pause',
    keys: ['space'],
    description: 'Pause / resume the view (events keep being collected)',
    category: 'view',
    dangerous: false,
    hint: 'pause',
  },
  {
    command: 'scroll-up',
    keys: ['pageup'],
    description: 'Scroll the events back (pauses the view)',
    category: 'view',
    dangerous: false,
  },
  {
    command: 'scroll-down',
    keys: ['pagedown'],
    description: 'Scroll the events forward',
    category: 'view',
    dangerous: false,
  },
  {
    command: 'scroll-top',
    keys: ['home'],
    description: 'Jump to the oldest event kept',
    category: 'view',
    dangerous: false,
  },
  {
    command: 'scroll-live',
    keys: ['end'],
    description: 'Back to live events (resumes the view)',
    category: 'view',
    dangerous: false,
  },
  {
    command: 'filter',
    keys: ['/'],
    description: 'Filter events: n2 MsgApp !MsgHeartbeat (empty clears)',
    category: 'view',
    dangerous: false,
    hint: 'filter',
  },
  {
    command: 'help',
    keys: ['?'],
    description: 'Show / hide this help',
    category: 'console',
    dangerous: false,
    hint: 'help',
  },
  {
    command: 'quit',
    keys: ['q', 'ctrl+c'],
    description: 'Quit (stops a cluster started by `up`; an attached one keeps running)',
    category: 'console',
    dangerous: false,
    hint: 'quit',
  },
  {
    command: 'campaign',
    keys: ['c'],
    description: 'Make the selected node campaign',
    category: 'cluster',
    dangerous: false,
    hint: 'campaign',
    live: true,
  },
  {
    command: 'transfer',
    keys: ['t'],
    description: 'Transfer leadership to the selected node',
    category: 'cluster',
    dangerous: false,
    hint: 'transfer',
    live: true,
  },
  {
    command: 'propose',
    keys: ['p'],
    description: 'Propose a value (asks for the text)',
    category: 'cluster',
    dangerous: false,
    hint: 'propose',
    live: true,
  },
  {
    command: 'forget-leader',
    keys: ['f'],
    description: 'Make the selected node forget its leader',
    category: 'cluster',
    dangerous: false,
    live: true,
  },
  {
    command: 'snapshot',
    keys: ['s'],
    description: 'Take a snapshot on the selected node',
    category: 'cluster',
    dangerous: false,
    live: true,
  },
  {
    command: 'command-line',
    keys: [':'],
    description: 'Command line: put/get/del/campaign/transfer/member/fault/snapshot',
    category: 'cluster',
    dangerous: false,
    hint: 'cmd',
    live: true,
  },
  {
    command: 'isolate',
    keys: ['x'],
    description: 'Isolate the selected node from its peers',
    category: 'faults',
    dangerous: false,
    hint: 'isolate',
    live: true,
  },
  {
    command: 'heal-all',
    keys: ['X'],
    description: 'Heal every fault on every node',
    category: 'faults',
    dangerous: false,
    hint: 'heal',
    live: true,
  },
  {
    command: 'kill',
    keys: ['K'],
    description: 'Kill the selected node (SIGKILL; `up` clusters only)',
    category: 'faults',
    dangerous: true,
    live: true,
  },
  {
    command: 'stop',
    keys: ['S'],
    description: 'Stop the selected node cleanly (SIGTERM: a leader hands leadership on; `up` clusters only)',
    category: 'faults',
    dangerous: true,
    live: true,
  },
  {
    command: 'restart',
    keys: ['r'],
    description: 'Restart the selected node (`up` clusters only)',
    category: 'faults',
    dangerous: false,
    live: true,
  },
  {
    command: 'add-node',
    keys: ['a'],
    description: 'Add a node (`up` clusters only)',
    category: 'membership',
    dangerous: false,
    live: true,
  },
  {
    command: 'remove-node',
    keys: ['d'],
    description: 'Remove the selected node from the cluster',
    category: 'membership',
    dangerous: true,
    live: true,
  },
  {
    command: 'promote',
    keys: ['l'],
    description: 'Promote the selected learner to voter',
    category: 'membership',
    dangerous: false,
    live: true,
  },
  {
    command: 'replay-faster',
    keys: ['+', '='],
    description: 'Replay faster',
    category: 'replay',
    dangerous: false,
    hint: 'faster',
    replayOnly: true,
  },
  {
    command: 'replay-slower',
    keys: ['-'],
    description: 'Replay slower',
    category: 'replay',
    dangerous: false,
    hint: 'slower',
    replayOnly: true,
  },
  {
    command: 'replay-step',
    keys: ['.'],
    description: 'Step one recorded input (while paused)',
    category: 'replay',
    dangerous: false,
    hint: 'step',
    replayOnly: true,
  },
];

/** The subset of Ink's Key this module reads (so tests need not build a whole Key). */
export interface KeyFlags {
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  ctrl?: boolean;
  tab?: boolean;
  backspace?: boolean;
  delete?: boolean;
}

/** Ink's (input, key) → one key name as used in the table. */
export function keyName(input: string, key: KeyFlags): string {
  if (key.upArrow) return 'up';
  if (key.downArrow) return 'down';
  if (key.leftArrow) return 'left';
  if (key.rightArrow) return 'right';
  if (key.pageUp) return 'pageup';
  if (key.pageDown) return 'pagedown';
  if (key.home) return 'home';
  if (key.end) return 'end';
  if (key.return) return 'return';
  if (key.escape) return 'escape';
  if (key.tab) return 'tab';
  if (key.backspace || key.delete) return 'backspace';
  if (key.ctrl) return `ctrl+${input}`;
  if (input === ' ') return 'space';
  return input;
}

const CHAR_NAMES: Record<string, string> = {
  '\r': 'return',
  '\n': 'return',
  '\t': 'tab',
  '\x7f': 'backspace',
  '\b': 'backspace',
  '\x03': 'ctrl+c',
  '\x15': 'ctrl+u',
  ' ': 'space',
};

/**
 * Ink's (input, key) → the key presses it stands for. Ink hands over plain text as one chunk,
 * so keys typed (or sent by tmux) faster than a read — `2c`, `hello\r` — arrive together;
 * they are split here into one press per character so none is lost.
 */
export function keyPresses(input: string, key: KeyFlags): { name: string; input: string }[] {
  const single = [...input];
  if (single.length <= 1 || key.ctrl || key.escape) return [{ name: keyName(input, key), input }];
  const out: { name: string; input: string }[] = [];
  for (const ch of single) {
    const named = CHAR_NAMES[ch];
    if (named !== undefined) out.push({ name: named, input: ch });
    // Other control characters mean nothing to the console.
    else if (ch >= ' ') out.push({ name: ch, input: ch });
  }
  return out;
}

const KEY_LABELS: Record<string, string> = {
  up: '↑',
  down: '↓',
  return: 'Enter',
  escape: 'Esc',
  space: 'Space',
  pageup: 'PgUp',
  pagedown: 'PgDn',
  home: 'Home',
  end: 'End',
  'ctrl+c': 'Ctrl-C',
};

export function keyLabel(key: string): string {
  return KEY_LABELS[key] ?? key;
}

/** How the keys of a binding read in the help: `↑/k`, `1–9`. */
export function keysLabel(b: KeyBinding): string {
  if (b.command === 'select-index') return `${b.keys[0]}–${b.keys[b.keys.length - 1]}`;
  return b.keys.map(keyLabel).join('/');
}

/** Names the settings (`raftctl config set keys.ACTION KEY`) may use for the same keys. */
const KEY_ALIASES: Record<string, string> = {
  ' ': 'space',
  enter: 'return',
  esc: 'escape',
  delete: 'backspace',
};

export class KeymapError extends Error {
  override name = 'KeymapError';
}

/**
 * The table with user overrides applied (`{campaign: 'C'}`, several keys comma-separated).
 * Throws KeymapError for an unknown command or a key that would end up bound twice.
 */
export function buildKeymap(overrides: Record<string, string> = {}): KeyBinding[] {
  const table = KEYMAP.map((b) => ({ ...b }));
  for (const [command, keys] of Object.entries(overrides)) {
    const b = table.find((x) => x.command === command);
    if (b === undefined) {
      throw new KeymapError(
        `settings.keys: unknown console command '${command}' (known: ${CONSOLE_COMMANDS.join(', ')})`,
      );
    }
    const list = keys
      .split(',')
      .map((k) => k.trim())
      .map((k) => KEY_ALIASES[k] ?? k)
      .filter((k) => k !== '');
    if (list.length === 0) throw new KeymapError(`settings.keys.${command}: no key given`);
    b.keys = list;
  }
  const dup = duplicateKeys(table);
  if (dup.length > 0) {
    throw new KeymapError(
      `settings.keys: ${dup.map((d) => `'${d.key}' is bound to both ${d.commands.join(' and ')}`).join('; ')}`,
    );
  }
  return table;
}

/** Keys bound to more than one command. */
export function duplicateKeys(table: readonly KeyBinding[]): { key: string; commands: string[] }[] {
  const seen = new Map<string, string[]>();
  for (const b of table) {
    for (const k of b.keys) seen.set(k, [...(seen.get(k) ?? []), b.command]);
  }
  return [...seen.entries()]
    .filter(([, cmds]) => cmds.length > 1)
    .map(([key, commands]) => ({ key, commands }));
}

/** key name → binding, for the input handler. */
export function indexKeymap(table: readonly KeyBinding[]): Map<string, KeyBinding> {
  const m = new Map<string, KeyBinding>();
  for (const b of table) for (const k of b.keys) m.set(k, b);
  return m;
}

/** Footer order: what a user reaches for first, then help and quit, then the rest (cut on narrow terminals). */
const HINT_ORDER: readonly ConsoleCommand[] = [
  'select-up',
  'campaign',
  'transfer',
  'propose',
  'isolate',
  'heal-all',
  'replay-faster',
  'replay-slower',
  'replay-step',
  'help',
  'quit',
  'open-node',
  'pause',
  'filter',
  'command-line',
];

/** The footer: `↑↓ select  c campaign …` (first key only), for live or replay mode. */
export function footerHints(
  table: readonly KeyBinding[],
  mode: 'live' | 'replay',
): { keys: string; label: string }[] {
  const rank = (b: KeyBinding) => {
    const i = HINT_ORDER.indexOf(b.command);
    return i < 0 ? HINT_ORDER.length : i;
  };
  return table
    .filter((b) => b.hint !== undefined)
    .filter((b) => (mode === 'replay' ? !b.live : !b.replayOnly))
    .sort((a, b) => rank(a) - rank(b))
    .map((b) => ({ keys: b.command === 'select-up' ? '↑↓' : keyLabel(b.keys[0]!), label: b.hint! }));
}
