// Colours by meaning, so views never hard-code a colour and `mono` (or NO_COLOR, which
// turns colour off before Ink loads) leaves a readable screen.

export type ThemeName = 'dark' | 'light' | 'mono';

export interface Theme {
  name: ThemeName;
  leader: string | undefined;
  candidate: string | undefined;
  follower: string | undefined;
  bad: string | undefined;
  warn: string | undefined;
  good: string | undefined;
  accent: string | undefined;
  muted: string | undefined;
  /** Background of a cell that changed a moment ago. */
  changedBg: string | undefined;
  changedFg: string | undefined;
  /** Colours that tell the nodes apart in the event stream. */
  nodes: readonly string[];
}

const DARK: Theme = {
  name: 'dark',
  leader: 'greenBright',
  candidate: 'yellow',
  follower: 'cyan',
  bad: 'red',
  warn: 'yellow',
  good: 'green',
  accent: 'magentaBright',
  muted: 'gray',
  changedBg: 'yellow',
  changedFg: 'black',
  nodes: ['cyan', 'magenta', 'blue', 'green', 'yellow', 'white', 'cyanBright', 'magentaBright', 'blueBright'],
};

const LIGHT: Theme = {
  ...DARK,
  name: 'light',
  leader: 'green',
  follower: 'blue',
  accent: 'magenta',
  muted: 'gray',
  changedBg: 'yellowBright',
  nodes: ['blue', 'magenta', 'cyan', 'green', 'red', 'black', 'blueBright', 'magentaBright', 'cyanBright'],
};

const MONO: Theme = {
  name: 'mono',
  leader: undefined,
  candidate: undefined,
  follower: undefined,
  bad: undefined,
  warn: undefined,
  good: undefined,
  accent: undefined,
  muted: undefined,
  changedBg: undefined,
  changedFg: undefined,
  nodes: [],
};

export function theme(name: ThemeName | undefined): Theme {
  return name === 'light' ? LIGHT : name === 'mono' ? MONO : DARK;
}

export function nodeColor(t: Theme, id: number): string | undefined {
  return t.nodes.length === 0 ? undefined : t.nodes[(id - 1) % t.nodes.length];
}
