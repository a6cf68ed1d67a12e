// raftctl's command line. Every command lives in commands/; this file only assembles
// them, with strict flag checking so a typo is an error, never taken as an argument.
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './args.js';
import { nodeCommand } from './commands/node.js';
import { CliError, EXIT } from './exit.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const COMMANDS = [
  'node',
  'up',
  'down',
  'logs',
  'attach',
  'replay',
  'status',
  'put',
  'get',
  'del',
  'campaign',
  'transfer',
  'snapshot',
  'member',
  'fault',
  'config',
  'completion',
];
const GROUPS = ['member', 'fault', 'config'];

/** yargs' words for a misspelt command: it suggests a name, without saying what was typed. */
const SUGGESTION = /^Did you mean (.+)\?$/;

/** A group's subcommand that yargs does not know: a suggestion, or an unknown argument. */
function unknownSubcommand(words: readonly string[], msg: string): boolean {
  return (
    GROUPS.includes(words[0] ?? '') &&
    words[1] !== undefined &&
    (SUGGESTION.test(msg) || msg === `Unknown argument: ${words[1]}`)
  );
}

/**
 * The help to point at: the command's own when the command line names one (a group's own
 * when its subcommand is the word it does not know).
 */
function helpFor(argv: readonly string[], msg: string): string {
  const words = argv.filter((a) => !a.startsWith('-'));
  const cmd = words[0];
  if (cmd === undefined || !COMMANDS.includes(cmd)) return 'raftctl --help';
  return GROUPS.includes(cmd) && words[1] !== undefined && !unknownSubcommand(words, msg)
    ? `raftctl ${cmd} ${words[1]} --help`
    : `raftctl ${cmd} --help`;
}

/** Names a misspelt command as typed (a group's with its subcommand), and a suggestion as one would type it. */
function usageMessage(argv: readonly string[], msg: string): string {
  const words = argv.filter((a) => !a.startsWith('-'));
  if (words[0] === undefined) return msg;
  const inGroup = unknownSubcommand(words, msg);
  const typed = inGroup ? `${words[0]} ${words[1]}` : words[0];
  const suggested = SUGGESTION.exec(msg)?.[1];
  if (suggested !== undefined) {
    const asTyped = inGroup ? `${words[0]} ${suggested}` : suggested;
    return `unknown command ${JSON.stringify(typed)}. Did you mean ${JSON.stringify(asTyped)}?`;
  }
  const unknown = inGroup || (!COMMANDS.includes(words[0]) && msg === `Unknown argument: ${words[0]}`);
  return unknown ? `unknown command ${JSON.stringify(typed)}` : msg;
}

/** Options that may be given more than once: their values add up to one list. */
const LIST_OPTIONS = new Set(['_', 'endpoints', 'e']);

/**
 * A flag given twice reaches a command as an array of both values (yargs' default, which
 * the list options rely on), where every other option expects one value: say so instead.
 */
function rejectRepeatedFlags(args: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(args)) {
    if (!Array.isArray(value) || LIST_OPTIONS.has(name)) continue;
    const flag = name.length === 1 ? `-${name}` : `--${name}`;
    throw new UsageError(
      `${flag} was given ${value.length} times (${value.map(String).join(', ')}); give it once`,
    );
  }
}

export async function main(argv: string[]): Promise<void> {
  // `raftctl node` stops itself cleanly on signals; every other command gets exit 130
  // (or its own cleanup, see onInterrupt).
  const serving = argv[0] === 'node';
  if (!serving) (await import('./commands/common.js')).installInterruptHandlers();
  let cli: Argv = yargs(argv)
    .scriptName('raftctl')
    .usage('$0 <command> [options]\n\nA Raft toolkit and a terminal console for Raft clusters.')
    .strict()
    .demandCommand(1, 'Name a command.')
    .recommendCommands()
    .option('color', {
      type: 'boolean',
      default: true,
      describe: 'Colour output (--no-color or NO_COLOR=1 turns it off)',
    })
    .help()
    .alias('h', 'help')
    .version(packageVersion())
    .alias('v', 'version')
    .completion('completion', 'Print a bash/zsh completion script (raftctl completion >> ~/.bashrc)')
    .example('$0 up', 'Start a 3-node local cluster and open the console')
    .example('$0 up --detach && $0 put k v && $0 get k', 'Script against a background cluster')
    .example('$0 attach 127.0.0.1:7001', 'Open the console on any running cluster')
    .epilogue(
      'Endpoints: --endpoints HOST:PORT[,…], else RAFTCTL_ENDPOINTS, else the cluster last started with `up`.\n' +
        'Exit codes: 0 ok, 1 failure, 2 usage, 3 no leader or quorum, 130 interrupted.',
    )
    .wrap(Math.min(110, process.stdout.columns || 100))
    .middleware(rejectRepeatedFlags, true)
    .fail((msg, err) => {
      if (err && !(err instanceof UsageError)) throw err;
      process.stderr.write(
        `raftctl: ${usageMessage(argv, err ? err.message : msg)}\nRun '${helpFor(argv, err ? err.message : msg)}' for usage.\n`,
      );
      process.exit(EXIT.usage);
    });
  cli = nodeCommand(cli);
  // A node restart is timed from spawn: it skips loading the client, console and settings
  // modules the other commands need (a few hundred ms cold).
  if (!serving) {
    const [up, attach, ops, member, fault, check, config] = await Promise.all([
      import('./commands/up.js'),
      import('./commands/attach.js'),
      import('./commands/ops.js'),
      import('./commands/member.js'),
      import('./commands/fault.js'),
      import('./commands/check.js'),
      import('./commands/config.js'),
    ]);
    cli = up.upCommands(cli);
    cli = attach.attachCommands(cli);
    cli = ops.opsCommands(cli);
    cli = member.memberCommand(cli);
    cli = fault.faultCommand(cli);
    cli = check.checkCommand(cli);
    cli = config.configCommand(cli);
  }
  try {
    await cli.parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`raftctl: ${err.message}\n`);
      process.exit(EXIT.usage);
    }
    if (err instanceof CliError) {
      process.stderr.write(`raftctl: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`raftctl: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.failure);
  }
  // Scripting commands are done once parsing resolves; lingering sockets must not keep
  // the process alive. Let stdout drain first (it may be a pipe).
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(process.exitCode ?? EXIT.ok);
}

await main(hideBin(process.argv));
