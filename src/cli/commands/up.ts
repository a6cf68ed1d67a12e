// `raftctl up`, `raftctl down`, `raftctl logs`: local clusters whose node processes raftctl
// supervises (see ../cluster.ts).
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import type { Argv } from 'yargs';
import { parseClusterName, parseDuration, parseNodeId, parsePositiveInt, UsageError } from '../args.js';
import {
  clusterDirFor,
  isNodeAlive,
  ManagedCluster,
  nodeOutFile,
  prepareCluster,
  readClusterFile,
  tailFile,
} from '../cluster.js';
import { cliErrorFrom } from '../connect.js';
import { loadConsole, requireTerminal } from '../console.js';
import { CliError, EXIT } from '../exit.js';
import { formatLogRecord } from '../format.js';
import { MAX_CLUSTER_SIZE, SETTING_SPECS } from '../settings.js';
import {
  jsonOption,
  onInterrupt,
  out,
  printJson,
  say,
  settings,
  settingsStore,
  type TargetArgs,
  targetOptions,
  withSession,
} from './common.js';

function clusterOptions<T>(y: Argv<T>) {
  return y
    .option('name', {
      type: 'string',
      describe: 'Cluster name (its data lives in <data dir>/raftctl/clusters/NAME)',
    })
    .option('data-dir', { type: 'string', describe: 'Keep the cluster here instead' });
}

/** The cluster `down`/`logs` mean: --data-dir, --name, else the one last started with `up`, else `default`. */
function chosenDir(argv: { name?: string | undefined; 'data-dir'?: string | undefined }): string {
  if (argv.name === undefined && argv['data-dir'] === undefined && settings().lastCluster) {
    return settings().lastCluster!;
  }
  return clusterDirFor(argv);
}

export function upCommands(y: Argv): Argv {
  return y
    .command(
      'up [size]',
      'Start a local cluster (or resume it) and open the console',
      (a) =>
        jsonOption(clusterOptions(a))
          .positional('size', {
            type: 'string',
            describe: `Number of nodes, 1–${MAX_CLUSTER_SIZE} (default 3, or the cluster-size setting)`,
          })
          .option('fresh', {
            type: 'boolean',
            default: false,
            describe: "Delete the cluster's data first and start over",
          })
          .option('detach', {
            alias: 'd',
            type: 'boolean',
            default: false,
            describe: 'Leave the nodes running in the background and return',
          })
          .option('tick-ms', {
            type: 'string',
            describe: 'Raft tick of a new cluster in ms (default 100, or the tick-ms setting)',
          })
          .option('base-port', {
            type: 'string',
            describe: 'First port to try (default: any free port, or the base-port setting)',
          })
          .option('token', {
            type: 'string',
            describe: 'Operator and peer token of a new cluster (default: RAFTCTL_TOKEN)',
          })
          .option('timeout', { type: 'string', default: '30s', describe: 'How long to wait for a leader' })
          .option('record', {
            type: 'string',
            describe: 'Record what the console sees to this NDJSON file (for `replay`)',
          })
          .example('$0 up', 'Three nodes and the console; quitting stops them')
          .example('$0 up 5 --name big', 'Five nodes in their own cluster "big"')
          .example(
            '$0 up --detach',
            'Start in the background; then `raftctl status`, `raftctl attach …`, `raftctl down`',
          )
          .example('$0 up --fresh', 'Throw away the old data and start a new cluster')
          .epilogue(
            'Running `up` again resumes the same cluster (same ids, ports and data). Node logs: <dir>/nID/node.log.',
          ),
      async (argv) => {
        const s = settings();
        const size = parsePositiveInt(argv.size ?? s.clusterSize, 'size', 1, MAX_CLUSTER_SIZE);
        const name = parseClusterName(argv.name ?? 'default');
        const dir = clusterDirFor({ name, 'data-dir': argv['data-dir'] });
        const tickMs =
          argv['tick-ms'] === undefined
            ? s.tickMs
            : parsePositiveInt(argv['tick-ms'], '--tick-ms', 1, 10_000);
        const basePort =
          argv['base-port'] === undefined
            ? s.basePort
            : (SETTING_SPECS['base-port']!.parse(argv['base-port']) as number);
        const timeoutMs = parseDuration(argv.timeout, '--timeout', 3_600_000);
        const color = argv.color !== false;
        // Fail before starting anything if the console cannot run.
        let ui: Awaited<ReturnType<typeof loadConsole>> | undefined;
        if (!argv.detach) {
          requireTerminal("start the cluster with 'raftctl up --detach' and use the scripting commands");
          ui = await loadConsole();
        }
        const { file, resumed } = await prepareCluster({
          size,
          name,
          dir,
          fresh: argv.fresh,
          tickMs,
          basePort,
          token: argv.token ?? process.env.RAFTCTL_TOKEN,
          timeoutMs,
          say: (l) => say(`raftctl: ${l}`),
        });
        const cluster = new ManagedCluster(dir, file);
        settingsStore.rememberCluster(dir);
        settingsStore.rememberEndpoints(cluster.endpoints());

        // Until the nodes are handed over (detach) or stopped (quit), an interrupt stops what we started.
        let started: number[] = [];
        const abandon = () => {
          if (started.length > 0) cluster.signalAll('SIGTERM');
        };
        onInterrupt(() => {
          abandon();
          // Let other handlers (the console restoring the terminal) run first.
          setImmediate(() => process.exit(EXIT.interrupted));
        });
        started = cluster.startAll();
        say(
          started.length === 0
            ? `raftctl: cluster '${file.name}' is already running`
            : `raftctl: ${resumed ? 'resuming' : 'starting'} cluster '${file.name}' (${started.length} of ${file.nodes.length} nodes) in ${dir}`,
        );
        let leader: { leader: number; term: number };
        try {
          leader = await cluster.waitForLeader(timeoutMs);
        } catch (err) {
          if (started.length > 0) await cluster.stopAll();
          throw err;
        }

        if (argv.detach) {
          onInterrupt(undefined);
          const eps = cluster.endpoints();
          const nameFlag =
            file.name === 'default' && argv['data-dir'] === undefined
              ? ''
              : argv['data-dir']
                ? ` --data-dir ${dir}`
                : ` --name ${file.name}`;
          if (argv.json) {
            printJson({
              name: file.name,
              dataDir: dir,
              leader: leader.leader,
              term: leader.term,
              nodes: cluster.nodes,
            });
          } else {
            for (const n of cluster.nodes) out(`${n.id}\t${n.address}\tpid ${n.pid ?? '-'}\t${n.logFile}`);
          }
          say(
            `raftctl: cluster '${file.name}' is up: ${file.nodes.length} nodes, leader ${leader.leader} (term ${leader.term})`,
          );
          say(`  console:  raftctl attach ${eps.join(' ')}`);
          say(`  status:   raftctl status${nameFlag}`);
          say(`  stop:     raftctl down${nameFlag}`);
          return;
        }

        // Nodes must not outlive a crash of this process: a last synchronous SIGTERM.
        process.on('exit', () => cluster.signalAll('SIGTERM'));
        onInterrupt(() => {
          cluster.signalAll('SIGTERM');
          setImmediate(() => process.exit(EXIT.interrupted));
        });
        const st = settings();
        await ui!.runConsole({
          endpoints: cluster.endpoints(),
          ...(file.token === undefined ? {} : { token: file.token }),
          cluster,
          ...(argv.record === undefined ? {} : { record: argv.record }),
          settings: { keys: st.keys, theme: st.theme },
          noColor: !color,
        });
        say(`raftctl: stopping cluster '${file.name}'…`);
        await cluster.stopAll();
        say(
          `raftctl: stopped; 'raftctl up${file.name === 'default' ? '' : ` --name ${file.name}`}' resumes it`,
        );
      },
    )
    .command(
      'down',
      'Stop a cluster started by `up` (cleanly: SIGTERM, then SIGKILL after 5 s)',
      (a) =>
        clusterOptions(a)
          .option('purge', { type: 'boolean', default: false, describe: "Also delete the cluster's data" })
          .example('$0 down', 'Stop the cluster last started with `up`')
          .example('$0 down --name big --purge', 'Stop cluster "big" and delete its data'),
      async (argv) => {
        const dir = chosenDir(argv);
        const file = readClusterFile(dir);
        if (file === undefined) throw new CliError(`no cluster at ${dir} (nothing to stop)`);
        const cluster = new ManagedCluster(dir, file);
        const running = file.nodes.filter(isNodeAlive).length;
        if (running > 0) {
          await cluster.stopAll();
          say(`raftctl: stopped cluster '${file.name}' (${running} node${running === 1 ? '' : 's'})`);
        } else say(`raftctl: cluster '${file.name}' is not running`);
        if (argv.purge) {
          rmSync(dir, { recursive: true, force: true });
          say(`raftctl: deleted ${dir}`);
        }
      },
    )
    .command(
      'logs <id>',
      "Print a node's log (the log file for clusters started by `up`, else over the network)",
      (a) =>
        jsonOption(targetOptions(a))
          .positional('id', { type: 'string', demandOption: true, describe: 'Node id' })
          .option('lines', { alias: 'n', type: 'string', default: '50', describe: 'How many recent lines' })
          .option('follow', {
            alias: 'f',
            type: 'boolean',
            default: false,
            describe: 'Keep printing new lines (Ctrl-C stops)',
          })
          .example('$0 logs 1', 'The last 50 lines of node 1')
          .example('$0 logs 2 -f', 'Follow node 2')
          .example('$0 logs 3 --endpoints 10.0.0.3:7001', 'A node raftctl did not start'),
      async (argv) => {
        const id = parseNodeId(argv.id);
        const lines = parsePositiveInt(argv.lines, '--lines', 1, 10_000);
        const remote =
          argv.endpoints !== undefined || (process.env.RAFTCTL_ENDPOINTS && !argv.name && !argv['data-dir']);
        if (!remote) {
          const file = readClusterFile(chosenDir(argv));
          const node = file?.nodes.find((n) => n.id === id);
          if (node !== undefined) return tailLocal(node.logFile, nodeOutFile(node), lines, argv.follow);
          // A cluster named on the command line that does not have this node; with no such
          // cluster at all, the session below says so, as for every other command.
          if (file !== undefined && (argv.name || argv['data-dir'])) {
            throw new UsageError(`node ${id} is not part of that cluster`);
          }
        }
        await logsRemote(argv as TargetArgs & { json: boolean }, id, lines, argv.follow);
      },
    );
}

async function tailLocal(file: string, outFile: string, lines: number, follow: boolean): Promise<void> {
  const first = tailFile(file, lines);
  if (first.length === 0) {
    // A node that failed before opening its log explains why in its output file.
    const crash = tailFile(outFile, lines);
    if (crash.length === 0) throw new CliError(`no log yet at ${file}`);
    for (const l of crash) out(l);
    return;
  }
  for (const l of first) out(l);
  if (!follow) return;
  let size = statSync(file).size;
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    let now: number;
    try {
      now = statSync(file).size;
    } catch {
      continue;
    }
    if (now < size) size = 0; // truncated or replaced
    if (now > size) {
      const fd = openSync(file, 'r');
      const buf = Buffer.alloc(now - size);
      readSync(fd, buf, 0, buf.length, size);
      closeSync(fd);
      process.stdout.write(buf);
      size = now;
    }
  }
}

const LogRecords = (v: unknown) =>
  Array.isArray(v)
    ? v.filter(
        (r): r is { at: number; level: string; component: string; message: string } =>
          typeof r === 'object' && r !== null && typeof (r as { message?: unknown }).message === 'string',
      )
    : [];

async function logsRemote(
  argv: TargetArgs & { json: boolean },
  id: number,
  lines: number,
  follow: boolean,
): Promise<void> {
  await withSession({ ...argv, timeout: follow ? '24h' : argv.timeout }, async (s) => {
    let last = '';
    for (;;) {
      let records: ReturnType<typeof LogRecords>;
      try {
        records = LogRecords(await s.on(id, 'log', { limit: last === '' ? lines : 2000 }));
      } catch (err) {
        throw cliErrorFrom(err, `log from node ${id}`);
      }
      // Records have no sequence number: resume after the last one printed.
      const keys = records.map((r) => `${r.at}|${r.component}|${r.message}`);
      const from = last === '' ? 0 : keys.lastIndexOf(last) + 1;
      const fresh = records.slice(from);
      if (argv.json && !follow) printJson(fresh);
      else for (const r of fresh) out(argv.json ? JSON.stringify(r) : formatLogRecord(r));
      if (keys.length > 0) last = keys.at(-1)!;
      if (!follow) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  });
}
