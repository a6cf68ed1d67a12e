// Loads the console (src/ui/app.tsx) only when a command opens it, so scripting commands
// never pay for Ink and React.
import { CliError } from './exit.js';

export type { ConsoleOptions, ConsoleSettings, ReplayOptions } from '../ui/app.js';

/** The console module's entry points. */
export type ConsoleModule = Pick<typeof import('../ui/app.js'), 'runConsole' | 'runReplay'>;

/** Fails with a clear message when the console cannot run here. */
export function requireTerminal(alternative: string): void {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new CliError(`the console needs a terminal (stdin and stdout must be a TTY): ${alternative}`);
  }
}

/**
 * Imports the console on demand (Ink and React cost startup time that scripting commands
 * should not pay). The import names its module literally, so the bundle (see
 * scripts/bundle.mjs) carries the console as a chunk of its own, loaded only here.
 */
export async function loadConsole(): Promise<ConsoleModule> {
  try {
    return await import('../ui/app.js');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new CliError(
      `the console is not in this build (${(err as Error).message}; run 'npm run build'). ` +
        "Meanwhile use 'raftctl up --detach' with 'raftctl status', or 'raftctl attach --once'",
    );
  }
}
