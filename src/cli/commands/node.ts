// `raftctl node`: run one Raft node in this process until it is stopped or removed.
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { LOG_LEVELS, type LogLevel } from '../../server/log.js';
import {
  parseByteSize,
  parseHostPort,
  parseNodeId,
  parsePeers,
  parsePositiveInt,
  UsageError,
} from '../args.js';
import { CliError, EXIT } from '../exit.js';

/** Reads a PEM file named by a flag; a missing or unreadable file is an error naming both. */
function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CliError(
      `cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

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
        .option('token', {
          type: 'string',
          describe:
            'Shared secret peers and operators must present (default: RAFTCTL_TOKEN, which keeps it out of `ps`); required unless --listen is a loopback address',
        })
        .option('insecure', {
          type: 'boolean',
          default: false,
          describe:
            'DANGEROUS: listen beyond loopback without a token; anyone who can reach the port can read and change the data',
        })
        .option('tls-cert', {
          type: 'string',
          describe: 'PEM certificate: serve HTTPS/WSS and dial peers over WSS (with --tls-key)',
        })
        .option('tls-key', { type: 'string', describe: 'PEM private key of --tls-cert' })
        .option('tls-ca', {
          type: 'string',
          describe: 'PEM CA: require client certificates it signed (mutual TLS) and verify peers with it',
        })
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
          // etcd's default --snapshot-count since 3.2: a snapshot encodes the whole KV, so
          // taking one every 10,000 entries cost a busy node a quarter of its CPU.
          default: 100_000,
          describe:
            "Snapshot the KV state every N applied writes, once the log since the last snapshot holds at least that snapshot's bytes (a node's first one comes up to N later, set by its id, so members do not all snapshot at once)",
        })
        .option('snapshot-bytes', {
          type: 'string',
          default: '64MiB',
          describe:
            'Snapshot sooner once the log since the last snapshot holds this much data, or as much as that snapshot if it is larger (bounds the log kept in memory when values are large)',
        })
        .option('snapshot-catch-up', {
          type: 'number',
          default: 5_000,
          describe:
            'Writes kept in the log behind a snapshot for lagging followers (at most a quarter of --snapshot-bytes of them)',
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
          'RAFTCTL_TOKEN=s3cret $0 node --id 1 --listen 10.0.0.1:7001 --peers 1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001 --data-dir ./n1 --tls-cert n1.pem --tls-key n1-key.pem --tls-ca ca.pem',
          'A node on a real network: a token, and mutual TLS between peers and operators',
        )
        .example(
          '$0 node --id 4 --listen 127.0.0.1:7004 --peers 1=127.0.0.1:7001,4=127.0.0.1:7004 --data-dir ./n4 --join',
          'Join node 4 to a running cluster (after `raftctl member add 4 127.0.0.1:7004`)',
        )
        .epilogue(
          'One node per data dir (a LOCK file there names it). SIGTERM or Ctrl-C stops the node gracefully, exit 0: ' +
            'a leader first hands leadership to its most caught-up voter. A node removed from the cluster stops, exit 0, ' +
            'saying so. Exit 1: a start-up failure or a fatal error, with a message saying what to do; exit 2: a bad flag.',
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
      const token = argv.token ?? (process.env.RAFTCTL_TOKEN || undefined);
      if (token === '') throw new UsageError('--token is empty: give a secret, or leave the flag out');
      const certFile = argv['tls-cert'];
      const keyFile = argv['tls-key'];
      const caFile = argv['tls-ca'];
      if ((certFile === undefined) !== (keyFile === undefined)) {
        throw new UsageError('--tls-cert and --tls-key go together: give both, or neither');
      }
      if (caFile !== undefined && certFile === undefined) {
        throw new UsageError('--tls-ca needs --tls-cert and --tls-key (this node serves TLS with them)');
      }
      const tls =
        certFile === undefined || keyFile === undefined
          ? undefined
          : {
              cert: readPem(certFile, '--tls-cert'),
              key: readPem(keyFile, '--tls-key'),
              ...(caFile === undefined ? {} : { ca: readPem(caFile, '--tls-ca') }),
            };
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
          ...(token === undefined ? {} : { token }),
          insecure: argv.insecure,
          ...(tls === undefined ? {} : { tls }),
          allowFaults: argv['allow-faults'],
          tickMs: parsePositiveInt(argv['tick-ms'], '--tick-ms', 1, 60_000),
          electionTicks,
          heartbeatTicks,
          preVote: argv['pre-vote'],
          checkQuorum: argv['check-quorum'],
          snapshotEvery: parsePositiveInt(argv['snapshot-every'], '--snapshot-every', 1),
          snapshotBytes: parseByteSize(argv['snapshot-bytes'], '--snapshot-bytes', 1024),
          snapshotCatchUpWrites: parsePositiveInt(argv['snapshot-catch-up'], '--snapshot-catch-up', 0),
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
      let lastSignalAt = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        // A library exit hook (conf's) re-raises the signal it saw, so the same delivery
        // can reach us twice in a row; only a second signal a moment later means "now".
        const now = Date.now();
        const repeat = signals > 0 && now - lastSignalAt > 250;
        signals++;
        lastSignalAt = now;
        if (repeat) process.exit(EXIT.interrupted);
        if (signals === 1) void node.stop(`received ${sig}`);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const { code } = await node.stopped;
      process.exit(signals > 0 ? 0 : code);
    },
  );
}
