// `raftctl attach HOST:PORT…` (the console on any cluster) and `raftctl replay FILE`.
import { existsSync } from 'node:fs';
import type { Argv } from 'yargs';
import { parseEndpoints, UsageError } from '../args.js';
import { ClusterSession, type Target, tlsFromFlags } from '../connect.js';
import { loadConsole, requireTerminal } from '../console.js';
import { CliError, EXIT } from '../exit.js';
import { buildStatus, formatStatusTable } from '../format.js';
import {
  jsonOption,
  out,
  paintFor,
  printJson,
  say,
  settings,
  settingsStore,
  timeoutOf,
  tlsOptions,
} from './common.js';

export function attachCommands(y: Argv): Argv {
  return y
    .command(
      'attach <endpoints..>',
      'Open the console on a running cluster: give any member, the others are discovered',
      (a) =>
        tlsOptions(
          jsonOption(a)
            .positional('endpoints', {
              type: 'string',
              array: true,
              demandOption: true,
              describe: 'HOST:PORT of one or more members',
            })
            .option('token', {
              type: 'string',
              describe: 'Operator token (default: RAFTCTL_TOKEN, else per endpoint from settings)',
            })
            .option('once', {
              type: 'boolean',
              default: false,
              describe: 'Do not open the console: print the discovered members and their status, then exit',
            })
            .option('timeout', { type: 'string', default: '5s', describe: 'How long to try the endpoints' })
            .option('record', {
              type: 'string',
              describe: 'Record what the console sees to this NDJSON file',
            }),
        )
          .example('$0 attach 127.0.0.1:7001', 'Discovers every member from node 1 and shows them all')
          .example(
            '$0 attach 10.0.0.1:2380 10.0.0.2:2380 --token s3cret',
            'Several entry points, with a token',
          )
          .example(
            '$0 attach 10.0.0.1:2380 --tls-ca ca.pem --tls-cert me.pem --tls-key me-key.pem',
            'A cluster serving TLS (wss://), with a client certificate',
          )
          .example('$0 attach 127.0.0.1:7001 --once --json', 'Discovery only, for scripts'),
      async (argv) => {
        const given = parseEndpoints((argv.endpoints as string[]).map(String), 'address');
        // The session (discovery, --once) and the console dial every member with the same TLS.
        const tls = tlsFromFlags(argv);
        const target: Target = {
          endpoints: given,
          token: argv.token ?? process.env.RAFTCTL_TOKEN,
          cluster: undefined,
          source: given.join(', '),
          ...(tls === undefined ? {} : { tls }),
        };
        const s = settings();
        const color = argv.color !== false;
        // Reachability first: "cannot reach" is the more useful news than "not a terminal".
        const session = await ClusterSession.open(target, {
          timeoutMs: timeoutOf({ timeout: argv.timeout }),
          tokens: s.tokens,
        });
        let endpoints: string[];
        try {
          // Every member the entry node knows, then any given endpoint it did not name.
          endpoints = [...new Set([...session.members.map((m) => m.address).filter(Boolean), ...given])];
          settingsStore.rememberEndpoints(given);
          if (argv.once) {
            const report = buildStatus(session.members, await session.statuses());
            if (argv.json) printJson({ ...report, endpoints });
            else out(formatStatusTable(report, paintFor({ color })));
            if (report.leader === 0) {
              say('raftctl: no member reports a leader');
              process.exitCode = EXIT.noQuorum;
            }
            return;
          }
          requireTerminal(
            "use 'raftctl attach --once' (or 'raftctl status --endpoints …') for a one-shot view",
          );
        } finally {
          await session.close();
        }
        const ui = await loadConsole();
        const token = target.token ?? s.tokens[session.entry];
        await ui.runConsole({
          endpoints,
          ...(token === undefined ? {} : { token }),
          ...(tls === undefined ? {} : { tls }),
          ...(argv.record === undefined ? {} : { record: argv.record }),
          settings: { keys: s.keys, theme: s.theme },
          noColor: !color,
        });
      },
    )
    .command(
      'replay <file>',
      'Replay a console recording (made with --record) in the console',
      (a) =>
        a
          .positional('file', { type: 'string', demandOption: true, describe: 'NDJSON recording' })
          .option('speed', {
            type: 'string',
            default: '1',
            describe: 'Playback speed, a power of two from 0.0625 to 64 (+/- change it while playing)',
          })
          .option('paused', {
            type: 'boolean',
            default: false,
            describe: 'Start paused (Space plays, . steps one event)',
          })
          .example('$0 replay session.ndjson', 'Watch it again')
          .example('$0 replay session.ndjson --speed 8', 'Eight times as fast')
          .example('$0 replay session.ndjson --paused', 'Step through it event by event'),
      async (argv) => {
        const file = String(argv.file);
        const speed = Number(argv.speed);
        // The player steps through powers of two (+/-); any other speed could not be shown.
        if (!(speed >= 0.0625 && speed <= 64 && Number.isInteger(Math.log2(speed)))) {
          throw new UsageError(
            `bad --speed ${JSON.stringify(argv.speed)}: expected a power of two from 0.0625 to 64 (0.25, 0.5, 1, 2, 4, …)`,
          );
        }
        if (!existsSync(file)) throw new CliError(`no such recording: ${file}`);
        requireTerminal('a recording can only be replayed in a terminal');
        const ui = await loadConsole();
        const s = settings();
        await ui.runReplay(file, {
          settings: { keys: s.keys, theme: s.theme },
          noColor: argv.color === false,
          speed,
          paused: argv.paused === true,
        });
      },
    );
}
