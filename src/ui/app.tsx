// The console's entry points: runConsole (live, for `raftctl up` and `raftctl attach`) and
// runReplay (a `--record`ed session). This module imports neither Ink nor the views at load
// time: colour support is decided when Ink (chalk) is first imported, so NO_COLOR must be
// turned into FORCE_COLOR=0 before that happens.

import type { TlsOptions } from '../client/client.js';
import type { ClusterControl } from './cluster-control.js';
import { ClusterConnections } from './connections.js';
import { ConsoleController, type ReplayControl, type ReplayInfo } from './controller.js';
import { buildKeymap, type KeyBinding, KeymapError } from './keymap.js';
import { Recorder, readRecording } from './record.js';
import { ReplayPlayer } from './replay.js';
import { ClusterStore } from './store.js';
import { type ThemeName, theme } from './theme.js';

export interface ConsoleSettings {
  /** Key overrides, console command → key(s), comma-separated. */
  keys?: Record<string, string>;
  theme?: ThemeName;
}

export interface ConsoleOptions {
  endpoints: string[];
  token?: string;
  /** Dial every member over TLS (wss://) with these; `raftctl attach --tls-*`. */
  tls?: TlsOptions;
  /** Present for clusters started by `raftctl up`: enables kill, restart and add. */
  cluster?: ClusterControl;
  /** Write every input to this NDJSON file. */
  record?: string;
  settings?: ConsoleSettings;
  /** --no-color (NO_COLOR in the environment has the same effect). */
  noColor?: boolean;
}

export interface ReplayOptions {
  settings?: ConsoleSettings;
  noColor?: boolean;
  /** 1 = recorded pace; 0.0625 … 64. */
  speed?: number;
  /** Start paused (step with `.`). */
  paused?: boolean;
}

const ENTER_ALT_SCREEN = '\x1b[?1049h\x1b[H\x1b[2J';
const LEAVE_ALT_SCREEN = '\x1b[?25h\x1b[?1049l';

/** Decides colour, CI handling and React's build; must run before Ink is imported. Exported for tests. */
export function prepareEnvironment(
  opts: { noColor?: boolean; settings?: ConsoleSettings },
  env: NodeJS.ProcessEnv = process.env,
  isTTY = process.stdout.isTTY === true,
): ThemeName {
  const noColor = opts.noColor === true || (env.NO_COLOR !== undefined && env.NO_COLOR !== '');
  // Ink ignores NO_COLOR; chalk (inside Ink) honours FORCE_COLOR=0.
  if (noColor) env.FORCE_COLOR = '0';
  // React picks its build when first loaded: without NODE_ENV it is the development build,
  // whose per-render checks and profiling hooks cost the console about 3× the CPU (bench:console).
  if (env.NODE_ENV === undefined || env.NODE_ENV === '') env.NODE_ENV = 'production';
  // Ink renders only the last frame when any CI variable is set. A console opened on a
  // terminal is interactive whatever the environment says.
  if (isTTY) {
    for (const k of ['CI', 'CONTINUOUS_INTEGRATION']) if (env[k] !== undefined) env[k] = 'false';
  }
  return noColor ? 'mono' : (opts.settings?.theme ?? 'dark');
}

function keymapFor(settings: ConsoleSettings | undefined, store: ClusterStore): KeyBinding[] {
  try {
    return buildKeymap(settings?.keys ?? {});
  } catch (err) {
    if (!(err instanceof KeymapError)) throw err;
    // A bad override must not keep the console from opening: use the defaults and say why.
    store.ingest({ type: 'note', level: 'warn', text: `${err.message}; using the default keys` });
    return buildKeymap();
  }
}

interface DashboardRun {
  store: ClusterStore;
  themeName: ThemeName;
  settings: ConsoleSettings | undefined;
  mode: 'live' | 'replay';
  title: string;
  backend?: ClusterConnections;
  cluster?: ClusterControl;
  replay?: ReplayControl;
  start(controller: ConsoleController): void;
  cleanup(): Promise<void>;
}

async function runDashboard(run: DashboardRun): Promise<void> {
  const [{ render }, react, { Dashboard }, hooks] = await Promise.all([
    import('ink'),
    import('react'),
    import('./dashboard.js'),
    import('./hooks.js'),
  ]);
  // React is CommonJS: its exports are the module's default (the bundle gives nothing else).
  const { createElement } = react.default;
  const stdout = process.stdout;
  const keymap = keymapFor(run.settings, run.store);
  let resolveQuit!: () => void;
  const quit = new Promise<void>((r) => {
    resolveQuit = r;
  });
  const controller = new ConsoleController({
    store: run.store,
    keymap,
    ...(run.backend !== undefined ? { backend: run.backend } : {}),
    ...(run.cluster !== undefined ? { cluster: run.cluster } : {}),
    ...(run.replay !== undefined ? { replay: run.replay } : {}),
    onQuit: () => resolveQuit(),
    // A page is the event area's height, roughly: the terminal minus header, table and footer.
    pageSize: () => Math.max(1, (stdout.rows || 24) - 12),
  });

  const fullScreen = stdout.isTTY === true;
  let left = false;
  const leave = () => {
    if (left || !fullScreen) return;
    left = true;
    stdout.write(LEAVE_ALT_SCREEN);
  };
  // Every way out restores the terminal: quit, signals, and an unexpected exit.
  const onSignal = () => resolveQuit();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', leave);
  // After SIGHUP the terminal is gone and writes fail with EIO; that must not crash the exit.
  const ignoreWriteError = () => {};
  stdout.on('error', ignoreWriteError);
  if (fullScreen) stdout.write(ENTER_ALT_SCREEN);

  const tree = createElement(
    hooks.StoreContext.Provider,
    { value: run.store },
    createElement(
      hooks.ControllerContext.Provider,
      { value: controller },
      createElement(Dashboard, { keymap, theme: theme(run.themeName), mode: run.mode, title: run.title }),
    ),
  );
  const instance = render(tree, {
    exitOnCtrlC: false,
    patchConsole: true,
    // The store already limits publishes to 20/s; this only caps the writes.
    maxFps: 20,
    incrementalRendering: process.env.RAFTCTL_INCREMENTAL === '1',
  });
  try {
    run.start(controller);
    await Promise.race([quit, instance.waitUntilExit()]);
  } finally {
    instance.unmount();
    run.store.dispose();
    await run.cleanup().catch(() => {});
    leave();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    process.off('exit', leave);
    stdout.off('error', ignoreWriteError);
  }
}

/** Opens the live console on the cluster reachable at `endpoints`; resolves when the user quits. */
export async function runConsole(opts: ConsoleOptions): Promise<void> {
  const themeName = prepareEnvironment(opts);
  const store = new ClusterStore();
  const recorder = opts.record !== undefined ? new Recorder(opts.record) : undefined;
  const backend = new ClusterConnections(store, {
    endpoints: opts.endpoints,
    ...(opts.token !== undefined ? { token: opts.token } : {}),
    ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
    ...(recorder !== undefined ? { record: (input) => recorder.write(input) } : {}),
  });
  if (recorder !== undefined)
    store.ingest({ type: 'note', level: 'info', text: `recording to ${recorder.file}` });
  await runDashboard({
    store,
    themeName,
    settings: opts.settings,
    mode: 'live',
    title: opts.cluster !== undefined ? `raftctl ${opts.cluster.name}` : 'raftctl',
    backend,
    ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}),
    start: () => backend.start(),
    cleanup: async () => {
      await backend.close();
      await recorder?.close();
    },
  });
}

/** Plays a recording in the dashboard (Space pause, +/- speed, `.` step); resolves on quit. */
export async function runReplay(file: string, opts: ReplayOptions = {}): Promise<void> {
  const themeName = prepareEnvironment(opts);
  // Read first: a bad file is reported on the normal screen, not inside the dashboard.
  const { inputs } = await readRecording(file);
  const store = new ClusterStore();
  // The controller exists only inside runDashboard; the player reports to it once it does.
  let sink: ((info: ReplayInfo) => void) | undefined;
  const p = new ReplayPlayer(store, inputs, (info) => sink?.(info));
  await runDashboard({
    store,
    themeName,
    settings: opts.settings,
    mode: 'replay',
    title: 'raftctl replay',
    replay: p,
    start: (controller) => {
      sink = (info) => controller.dispatch({ type: 'replay-info', info });
      p.start({ ...(opts.speed !== undefined ? { speed: opts.speed } : {}), paused: opts.paused ?? false });
    },
    cleanup: async () => p.stop(),
  });
}
