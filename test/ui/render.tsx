// Rendering helpers: ink-testing-library renders 100 columns wide with no height, so layout
// limits are tested with a fake terminal of a chosen size.
import { EventEmitter } from 'node:events';
import { render as inkRender } from 'ink';
import type { ReactElement } from 'react';
import { ConsoleController } from '../../src/ui/controller.js';
import { Dashboard } from '../../src/ui/dashboard.js';
import { ControllerContext, StoreContext } from '../../src/ui/hooks.js';
import { buildKeymap } from '../../src/ui/keymap.js';
import type { ClusterStore } from '../../src/ui/store.js';
import { theme } from '../../src/ui/theme.js';

class FakeStdout extends EventEmitter {
  frames: string[] = [];
  isTTY = true;
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  write = (s: string) => {
    this.frames.push(s);
    return true;
  };
  lastFrame = () => this.frames[this.frames.length - 1] ?? '';
}

class FakeStdin extends EventEmitter {
  isTTY = true;
  data: string | null = null;
  write = (d: string) => {
    this.data = d;
    this.emit('readable');
    this.emit('data', d);
  };
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
  read = () => {
    const d = this.data;
    this.data = null;
    return d;
  };
}

export function renderSized(tree: ReactElement, columns: number, rows: number) {
  const stdout = new FakeStdout(columns, rows);
  const stdin = new FakeStdin();
  const instance = inkRender(tree, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    stderr: new FakeStdout(columns, rows) as unknown as NodeJS.WriteStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  return { stdout, stdin, lastFrame: stdout.lastFrame, unmount: () => instance.unmount() };
}

/** Visible width of a line (ANSI removed). */
export function plain(s: string): string {
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

export function dashboardTree(
  store: ClusterStore,
  controller: ConsoleController,
  mode: 'live' | 'replay' = 'live',
) {
  const keymap = buildKeymap();
  return (
    <StoreContext.Provider value={store}>
      <ControllerContext.Provider value={controller}>
        <Dashboard keymap={keymap} theme={theme('dark')} mode={mode} />
      </ControllerContext.Provider>
    </StoreContext.Provider>
  );
}

export function makeController(
  store: ClusterStore,
  deps: Partial<ConstructorParameters<typeof ConsoleController>[0]> = {},
) {
  return new ConsoleController({ store, keymap: buildKeymap(), onQuit: () => {}, ...deps });
}

export const tick = (ms = 80) => new Promise((r) => setTimeout(r, ms));
