// `raftctl node`: run one Raft node in this process until it is stopped or removed.
import type { Argv } from 'yargs';
import { LOG_LEVELS, type LogLevel } from '../../server/log.js';
import { parseHostPort, parseNodeId, parsePeers, parsePositiveInt, UsageError } from '../args.js';
import { EXIT } from '../exit.js';

export function nodeCommand(y: Argv): Argv {
  return y.command(
    'node',
    'Run one Raft node (a durable KV replica) in the foreground',
    (a) =>
      a
        .option('id', { type: 'string', demandOption: true, describe: "This node's id (a positive integer)" })
        .option('listen', {
          type: 'string',
          demandOption: true,
          describe: 'HOST:PORT to serve peers, operators and HTTP',
        })
        .option('peers', {
          type: 'string',
          demandOption: true,
          describe: 'Members of a new cluster, this node included: 1=HOST:PORT,2=HOST:PORT,…',
        })
        .option('data-dir', {
          type: 'string',
          demandOption: true,
          describe: 'Where the WAL, snapshots and logs live',
        })
        .option('join', {
          type: 'boolean',
          default: false,
          describe: 'Join an existing cluster (add it with `member add` first)',
        })
        .option('cluster', {
          type: 'string',
          default: 'default',
          describe: 'Cluster name; nodes of other clusters are refused',
        })
        .option('token', { type: 'string', describe: 'Shared secret peers and operators must present' })
        .option('allow-faults', {
          type: 'boolean',
          default: false,
          describe: 'Accept fault-injection commands',
        })
        .option('tick-ms', { type: 'number', default: 100, describe: 'Milliseconds per Raft tick' })
        .option('election-ticks', {
          type: 'number',
          default: 10,
          describe: 'Ticks before a follower campaigns',
        })
        .option('heartbeat-ticks', {
          type: 'number',
          default: 1,
          describe: 'Ticks between leader heartbeats',
        })
        .option('pre-vote', {
          type: 'boolean',
          default: true,
          describe: 'Campaign with a PreVote round first',
        })
        .option('check-quorum', {
          type: 'boolean',
          default: true,
          describe: 'Leaders step down without a quorum',
        })
        .option('snapshot-every', {
          type: 'number',
          default: 10_000,
          describe: 'Snapshot the KV state every N applied entries',
        })
        .option('snapshot-catch-up', {
          type: 'number',
          default: 5_000,
          describe: 'Entries kept behind a snapshot for lagging followers',
        })
        .option('request-timeout-ms', {
          type: 'number',
          default: 5_000,
          describe: 'How long a client request may wait',
        })
        .option('log-level', {
          choices: LOG_LEVELS,
          default: 'info' as LogLevel,
          describe: 'Lowest level logged',
        })
        .option('quiet', {
          type: 'boolean',
          default: false,
          describe: 'Log only to the file in the data dir',
        })
        .example(
          '$0 node --id 1 --listen 127.0.0.1:7001 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data-dir ./n1',
          'Start node 1 of a new three-node cluster',
        )
        .example(
          '$0 node --id 4 --listen 127.0.0.1:7004 --peers 1=127.0.0.1:7001,4=127.0.0.1:7004 --data-dir ./n4 --join',
          'Join node 4 to a running cluster (after `raftctl member add 4 127.0.0.1:7004`)',
        ),
    async (argv) => {
      const id = parseNodeId(argv.id, '--id');
      const listen = parseHostPort(argv.listen, '--listen');
      const peers = parsePeers(argv.peers);
      if (!argv.join && !peers.has(id)) {
        throw new UsageError(
          `--peers must include this node (${id}=${argv.listen}) when starting a new cluster`,
        );
      }
      const electionTicks = parsePositiveInt(argv['election-ticks'], '--election-ticks', 2, 1000);
      const heartbeatTicks = parsePositiveInt(
        argv['heartbeat-ticks'],
        '--heartbeat-ticks',
        1,
        electionTicks - 1,
      );
      // Loaded here, not at the top: every other command starts faster without the server.
      const { StartupError, startNode } = await import('../../server/node.js');
      let node: Awaited<ReturnType<typeof startNode>>;
      try {
        node = await startNode({
          id,
          listen,
          peers,
          dataDir: argv['data-dir'],
          join: argv.join,
          cluster: argv.cluster,
          token: argv.token ?? process.env.RAFTCTL_TOKEN,
          allowFaults: argv['allow-faults'],
          tickMs: parsePositiveInt(argv['tick-ms'], '--tick-ms', 1, 60_000),
          electionTicks,
          heartbeatTicks,
          preVote: argv['pre-vote'],
          checkQuorum: argv['check-quorum'],
          snapshotEvery: parsePositiveInt(argv['snapshot-every'], '--snapshot-every', 1),
          snapshotCatchUpEntries: parsePositiveInt(argv['snapshot-catch-up'], '--snapshot-catch-up', 0),
          requestTimeoutMs: parsePositiveInt(argv['request-timeout-ms'], '--request-timeout-ms', 10, 600_000),
          logLevel: argv['log-level'],
          logToStderr: !argv.quiet,
        });
      } catch (err) {
        if (err instanceof StartupError) {
          process.stderr.write(`raftctl node: ${err.message}\n`);
          process.exit(EXIT.failure);
        }
        throw err;
      }
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) process.exit(EXIT.interrupted);
        void node.stop(`received ${sig}`);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const { code } = await node.stopped;
      process.exit(signals > 0 ? 0 : code);
    },
  );
}
