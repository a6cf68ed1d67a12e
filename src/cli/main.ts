// raftctl's command line. Every command lives in commands/; this file only assembles
// them, with strict flag checking so a typo is an error, never taken as an argument.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './args.js';
import { nodeCommand } from './commands/node.js';
import { EXIT } from './exit.js';

export async function main(argv: string[]): Promise<void> {
  let cli = yargs(argv)
    .scriptName('raftctl')
    .usage('$0 <command> [options]\n\nA Raft toolkit and a terminal console for Raft clusters.')
    .strict()
    .demandCommand(1, 'Name a command: see the list above.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .epilogue('Exit codes: 0 ok, 1 failure, 2 usage, 3 no leader or quorum, 130 interrupted.')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err && !(err instanceof UsageError)) throw err;
      process.stderr.write(`raftctl: ${err ? err.message : msg}\nRun 'raftctl --help' for usage.\n`);
      process.exit(EXIT.usage);
    });
  cli = nodeCommand(cli);
  try {
    await cli.parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`raftctl: ${err.message}\n`);
      process.exit(EXIT.usage);
    }
    process.stderr.write(`raftctl: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.failure);
  }
}

await main(hideBin(process.argv));
