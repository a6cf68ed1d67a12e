// Exit codes, documented in `raftctl --help` and the README.
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** The cluster has no leader or no quorum to answer. */
  noQuorum: 3,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * A failure the user should read (no stack trace), with the exit code it maps to. Commands
 * throw it; main() prints the message to stderr and exits with the code.
 */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode = EXIT.failure) {
    super(message);
    this.exitCode = exitCode;
  }
}
