// Loads the console (src/ui/app.tsx, written separately) only when a command opens it, so
// scripting commands never pay for Ink and React, and a build without the console still
// runs every other command.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from './exit.js';

export type { ConsoleOptions, ConsoleSettings, ReplayOptions } from '../ui/app.js';

/** The console module's entry points (types only: the module itself is loaded on demand). */
export type ConsoleModule = Pick<typeof import('../ui/app.js'), 'runConsole' | 'runReplay'>;

/** Fails with a clear message when the console cannot run here. */
export function requireTerminal(alternative: string): void {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new CliError(`the console needs a terminal (stdin and stdout must be a TTY): ${alternative}`);
  }
}

/**
 * Imports the console on demand (Ink and React cost startup time that scripting commands
 * should not pay), checking its exports at run time in case the build is partial.
 */
export async function loadConsole(): Promise<ConsoleModule> {
  const url = new URL('../ui/app.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new CliError(
      `the console is not in this build (${fileURLToPath(url)} is missing; run 'npm run build'). ` +
        "Meanwhile use 'raftctl up --detach' with 'raftctl status', or 'raftctl attach --once'",
    );
  }
  const mod = (await import(url.href)) as Partial<Record<keyof ConsoleModule, unknown>>;
  if (typeof mod.runConsole !== 'function' || typeof mod.runReplay !== 'function') {
    throw new CliError(
      `${fileURLToPath(url)} does not export runConsole and runReplay: rebuild with 'npm run build'`,
    );
  }
  return mod as ConsoleModule;
}
