// `raftctl fault isolate|heal|drop|delay`: transport faults on nodes started with
// --allow-faults (every cluster started by `raftctl up`).
import type { Argv } from 'yargs';
import type { CommandArgs, Fault } from '../../protocol/control.js';
import { parseDuration, parseIdList, parseNodeId, parseProbability } from '../args.js';
import { type ClusterSession, cliErrorFrom } from '../connect.js';
import { CliError } from '../exit.js';
import { jsonOption, out, printJson, type TargetArgs, targetOptions, withSession } from './common.js';

interface Args extends TargetArgs {
  json: boolean;
  id?: string;
  peers?: string;
  direction?: 'in' | 'out' | 'both';
}

function scoped<T>(a: Argv<T>) {
  return jsonOption(targetOptions(a))
    .positional('id', { type: 'string', demandOption: true, describe: 'Node whose transport gets the fault' })
    .option('peers', { type: 'string', describe: 'Only traffic with these peers: ID[,ID…] (default: all)' })
    .option('direction', {
      choices: ['in', 'out', 'both'] as const,
      describe: 'Only this direction (default: both)',
    });
}

async function apply(s: ClusterSession, id: number, fault: CommandArgs<'fault'>): Promise<Fault[]> {
  try {
    const r = (await s.on(id, 'fault', fault)) as { faults?: Fault[] } | null;
    return r?.faults ?? [];
  } catch (err) {
    throw cliErrorFrom(err, `fault on node ${id}`);
  }
}

function report(argv: Args, id: number, faults: Fault[], text: string): void {
  if (argv.json) printJson({ id, faults });
  else out(text);
}

function peersOf(argv: Args): number[] | undefined {
  return argv.peers === undefined ? undefined : parseIdList(argv.peers);
}

export function faultCommand(y: Argv): Argv {
  return y.command('fault', 'Inject network faults (clusters started with faults allowed)', (f) =>
    f
      .command(
        'isolate <id>',
        'Cut node ID off from every other member',
        (a) =>
          jsonOption(targetOptions(a))
            .positional('id', { type: 'string', demandOption: true, describe: 'Node id' })
            .example('$0 fault isolate 1', 'Node 1 can neither send nor receive'),
        async (argv) => {
          const id = parseNodeId(argv.id);
          const { peers, faults } = await withSession(argv as Args, async (s) => {
            const peers = s.members.filter((m) => m.id !== id).map((m) => m.id);
            s.member(id);
            if (peers.length === 0) throw new CliError(`node ${id} has no peers to be cut off from`);
            return { peers, faults: await apply(s, id, { kind: 'isolate', peers }) };
          });
          report(argv as Args, id, faults, `node ${id} isolated from ${peers.join(', ')}`);
        },
      )
      .command(
        'heal [id]',
        'Clear faults on node ID (default: on every member)',
        (a) =>
          jsonOption(targetOptions(a))
            .positional('id', { type: 'string', describe: 'Node id (default: all)' })
            .example('$0 fault heal', 'Clear every fault everywhere')
            .example('$0 fault heal 2', 'Only on node 2'),
        async (argv) => {
          const only = argv.id === undefined ? undefined : parseNodeId(argv.id);
          const healed = await withSession(argv as Args, async (s) => {
            const ids = only === undefined ? s.members.map((m) => m.id) : [only];
            const results = await Promise.allSettled(ids.map((id) => apply(s, id, { kind: 'heal' })));
            const failed = results.flatMap((r, i) =>
              r.status === 'rejected' ? [`${ids[i]}: ${(r.reason as Error).message}`] : [],
            );
            // Healing "everywhere" tolerates down members; healing one node must succeed.
            if (only !== undefined && failed.length > 0) throw new CliError(failed[0]!);
            if (failed.length > 0) process.stderr.write(`raftctl: could not heal ${failed.join('; ')}\n`);
            return ids.filter((_, i) => results[i]!.status === 'fulfilled');
          });
          if ((argv as Args).json) printJson({ healed });
          else
            out(
              `healed ${healed.length === 0 ? 'nothing' : `node${healed.length > 1 ? 's' : ''} ${healed.join(', ')}`}`,
            );
        },
      )
      .command(
        'drop <id> <probability>',
        'Drop a fraction of the messages of node ID',
        (a) =>
          scoped(a)
            .positional('probability', { type: 'string', demandOption: true, describe: '0–1 or 0–100%' })
            .example('$0 fault drop 3 0.3', 'Node 3 loses 30 % of its traffic')
            .example('$0 fault drop 3 100% --peers 1 --direction out', 'Node 3 never reaches node 1'),
        async (argv) => {
          const id = parseNodeId(argv.id);
          const probability = parseProbability(argv.probability);
          const a = argv as Args;
          const peers = peersOf(a);
          const faults = await withSession(a, (s) =>
            apply(s, id, {
              kind: 'drop',
              probability,
              ...(peers ? { peers } : {}),
              ...(a.direction ? { direction: a.direction } : {}),
            }),
          );
          report(
            a,
            id,
            faults,
            `node ${id} drops ${Math.round(probability * 100)}% of its messages${peers ? ` with ${peers.join(', ')}` : ''}`,
          );
        },
      )
      .command(
        'delay <id> <duration>',
        'Delay the messages of node ID',
        (a) =>
          scoped(a)
            .positional('duration', { type: 'string', demandOption: true, describe: 'e.g. 200, 200ms, 1.5s' })
            .example('$0 fault delay 2 200ms', 'Node 2 gets 200 ms more latency'),
        async (argv) => {
          const id = parseNodeId(argv.id);
          const ms = parseDuration(argv.duration, 'duration', 600_000);
          const a = argv as Args;
          const peers = peersOf(a);
          const faults = await withSession(a, (s) =>
            apply(s, id, {
              kind: 'delay',
              ms,
              ...(peers ? { peers } : {}),
              ...(a.direction ? { direction: a.direction } : {}),
            }),
          );
          report(
            a,
            id,
            faults,
            `node ${id} delays its messages by ${ms} ms${peers ? ` with ${peers.join(', ')}` : ''}`,
          );
        },
      )
      .demandCommand(1, 'Name a fault: isolate, heal, drop or delay.')
      .example('$0 fault isolate 1', 'Partition the leader away')
      .example('$0 fault heal', 'Undo every fault'),
  );
}
