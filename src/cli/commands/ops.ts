// Scripting commands that act on a running cluster: status, put, get, del, campaign,
// transfer, snapshot. Each prints data on stdout (a table or, with --json, one JSON line)
// and messages on stderr.
import type { Argv } from 'yargs';
import { z } from 'zod';
import type { NodeState } from '../../protocol/control.js';
import { parseNodeId } from '../args.js';
import { type ClusterSession, cliErrorFrom } from '../connect.js';
import { CliError, EXIT } from '../exit.js';
import { buildStatus, formatStatusTable } from '../format.js';
import {
  jsonOption,
  out,
  paintFor,
  printJson,
  say,
  type TargetArgs,
  targetOptions,
  withSession,
} from './common.js';

interface Common extends TargetArgs {
  json: boolean;
  color?: boolean;
}

// Result shapes this CLI reads from the node (the protocol leaves them to the node).
const PutResult = z.object({
  revision: z.number(),
  term: z.number(),
  prev: z.object({ value: z.string() }).optional(),
});
const GetResult = z.object({
  key: z.string(),
  found: z.boolean(),
  value: z.string().optional(),
  modRevision: z.number().optional(),
  revision: z.number(),
});
const DelResult = z.object({ revision: z.number(), deleted: z.number() });
const SnapResult = z.object({ index: z.number(), term: z.number() });

function shape<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success)
    throw new CliError(`${what}: the node answered with an unexpected shape: ${JSON.stringify(value)}`);
  return r.data;
}

const isLeader = (states: Map<number, NodeState | Error>, id: number): NodeState | undefined => {
  const st = states.get(id);
  return st !== undefined && !(st instanceof Error) && st.role === 'leader' ? st : undefined;
};

export function opsCommands(y: Argv): Argv {
  return y
    .command(
      'status',
      'Show every member: role, term, leader, commit/applied/last index, lag, health',
      (a) =>
        jsonOption(targetOptions(a))
          .example('$0 status', 'The cluster last started with `up`')
          .example('$0 status --endpoints 127.0.0.1:7001 --json', 'As JSON, from any member')
          .epilogue('Exits 3 when no member reports a leader, 1 when no endpoint answers.'),
      async (argv) => {
        const report = await withSession(argv as Common, async (s) =>
          buildStatus(s.members, await s.statuses()),
        );
        if (argv.json) printJson(report);
        else out(formatStatusTable(report, paintFor(argv as Common)));
        if (report.leader === 0) {
          say('raftctl: no member reports a leader');
          process.exitCode = EXIT.noQuorum;
        }
      },
    )
    .command(
      'put <key> <value>',
      'Write a key through Raft (on the leader)',
      (a) =>
        jsonOption(targetOptions(a))
          .positional('key', { type: 'string', demandOption: true, describe: 'Key (non-empty)' })
          .positional('value', {
            type: 'string',
            demandOption: true,
            describe: 'Value (use -- before a value starting with -)',
          })
          .example('$0 put greeting hello', 'Prints OK once the write is applied')
          .example('$0 put n -- -1', 'A value that starts with a dash'),
      async (argv) => {
        const key = String(argv.key);
        const value = String(argv.value);
        const r = await withSession(argv as Common, async (s) =>
          shape(PutResult, await s.onLeader('put', { key, value }), 'put'),
        );
        if (argv.json) printJson({ key, revision: r.revision, term: r.term, prev: r.prev?.value ?? null });
        else out('OK');
      },
    )
    .command(
      'get <key>',
      'Read a key (linearizable by default)',
      (a) =>
        jsonOption(targetOptions(a))
          .positional('key', { type: 'string', demandOption: true, describe: 'Key' })
          .option('serializable', {
            type: 'boolean',
            default: false,
            describe: "Answer from one node's local state (fast, may be stale)",
          })
          .option('node', {
            type: 'string',
            describe: 'With --serializable: the node to read from (default: the first that answers)',
          })
          .example('$0 get greeting', 'Prints the value; exits 1 if the key is absent')
          .example('$0 get greeting --serializable --node 3', "Node 3's possibly stale copy"),
      async (argv) => {
        const key = String(argv.key);
        if (argv.node !== undefined && !argv.serializable) {
          throw new CliError(
            '--node needs --serializable (linearizable reads go through the leader)',
            EXIT.usage,
          );
        }
        const r = await withSession(argv as Common, async (s) => {
          const v = argv.serializable
            ? await s
                .on(argv.node === undefined ? s.entryId : parseNodeId(argv.node, '--node'), 'get', {
                  key,
                  serializable: true,
                })
                .catch((err: unknown) => Promise.reject(cliErrorFrom(err, 'get')))
            : await s.onLeader('get', { key });
          return shape(GetResult, v, 'get');
        });
        if (argv.json) {
          printJson({
            key,
            found: r.found,
            value: r.value ?? null,
            modRevision: r.modRevision ?? null,
            revision: r.revision,
          });
        } else if (r.found) out(r.value ?? '');
        if (!r.found) {
          say(`raftctl: key ${JSON.stringify(key)} not found`);
          process.exitCode = EXIT.failure;
        }
      },
    )
    .command(
      'del <key>',
      'Delete a key through Raft',
      (a) =>
        jsonOption(targetOptions(a))
          .positional('key', { type: 'string', demandOption: true, describe: 'Key' })
          .example('$0 del greeting', 'Prints how many keys were deleted (0 or 1)'),
      async (argv) => {
        const key = String(argv.key);
        const r = await withSession(argv as Common, async (s) =>
          shape(DelResult, await s.onLeader('delete', { key }), 'del'),
        );
        if (argv.json) printJson({ key, deleted: r.deleted, revision: r.revision });
        else out(String(r.deleted));
      },
    )
    .command(
      'campaign <id>',
      'Make node ID campaign to become leader',
      (a) =>
        jsonOption(targetOptions(a))
          .positional('id', { type: 'string', demandOption: true, describe: 'Node id' })
          .option('force', {
            type: 'boolean',
            default: true,
            describe:
              "If followers ignore the election (they still hear a live leader: CheckQuorum's lease), have the leader hand over (--no-force to just report)",
          })
          .example('$0 campaign 2', 'Node 2 becomes leader')
          .example('$0 campaign 2 --no-force', 'Only an election: may fail while the leader is alive'),
      async (argv) => {
        const id = parseNodeId(argv.id);
        const r = await withSession(argv as Common, (s) => campaign(s, id, argv.force));
        if (argv.json) printJson(r);
        else
          out(
            `node ${id} is leader at term ${r.term}${r.via === 'transfer' ? ' (handed over by the old leader)' : ''}`,
          );
      },
    )
    .command(
      'transfer <id>',
      'Transfer leadership to node ID',
      (a) =>
        jsonOption(targetOptions(a))
          .positional('id', { type: 'string', demandOption: true, describe: 'Voter to become leader' })
          .example('$0 transfer 3', 'The leader hands over to node 3'),
      async (argv) => {
        const id = parseNodeId(argv.id);
        const r = await withSession(argv as Common, (s) => transfer(s, id));
        if (argv.json) printJson(r);
        else out(`node ${id} is leader at term ${r.term}`);
      },
    )
    .command(
      'snapshot <id>',
      'Make node ID snapshot its state and compact its log now',
      (a) =>
        jsonOption(targetOptions(a))
          .positional('id', { type: 'string', demandOption: true, describe: 'Node id' })
          .example('$0 snapshot 1', 'Prints the snapshot index and term'),
      async (argv) => {
        const id = parseNodeId(argv.id);
        const r = await withSession(argv as Common, async (s) => {
          try {
            return shape(SnapResult, await s.on(id, 'snapshot', {}), 'snapshot');
          } catch (err) {
            throw cliErrorFrom(err, `snapshot on node ${id}`);
          }
        });
        if (argv.json) printJson({ id, index: r.index, term: r.term });
        else out(`node ${id}: snapshot at index ${r.index} (term ${r.term})`);
      },
    );
}

export interface LeaderResult {
  leader: number;
  term: number;
  via: 'election' | 'transfer';
}

const CampaignResult = z.object({ via: z.enum(['transfer', 'hup']) });

/**
 * Asks node `id` to campaign. The node decides how (see the `campaign` command in
 * docs/protocol.md): with a live leader it asks that leader to hand over, since followers
 * under PreVote/CheckQuorum ignore a plain election; `force: false` sends only MsgHup.
 */
export async function campaign(s: ClusterSession, id: number, force: boolean): Promise<LeaderResult> {
  s.member(id);
  let via: 'transfer' | 'hup';
  try {
    via = shape(CampaignResult, await s.on(id, 'campaign', { hup: !force }), 'campaign').via;
  } catch (err) {
    throw cliErrorFrom(err, `campaign on node ${id}`);
  }
  const states = await s.waitFor((st) => isLeader(st, id) !== undefined);
  const won = states && isLeader(states, id);
  if (won) return { leader: id, term: won.term, via: via === 'transfer' ? 'transfer' : 'election' };
  if (!force) {
    throw new CliError(
      `node ${id} campaigned but did not win: followers ignore elections while they hear a live leader (PreVote/CheckQuorum); run without --no-force to have the leader hand over`,
    );
  }
  throw new CliError(
    `node ${id} did not become leader in time (is a quorum up? 'raftctl status')`,
    EXIT.noQuorum,
  );
}

export async function transfer(s: ClusterSession, id: number): Promise<LeaderResult> {
  const m = s.member(id);
  if (m.learner)
    throw new CliError(`node ${id} is a learner: promote it first ('raftctl member promote ${id}')`);
  const { id: leader, term } = await s.leader();
  if (leader === id) return { leader: id, term, via: 'transfer' };
  if (leader === 0) throw new CliError('transfer: the cluster has no leader to hand over', EXIT.noQuorum);
  try {
    await s.on(leader, 'transfer', { to: id });
  } catch (err) {
    throw cliErrorFrom(err, `transfer on leader ${leader}`);
  }
  const states = await s.waitFor((st) => isLeader(st, id) !== undefined);
  const won = states && isLeader(states, id);
  if (!won) {
    throw new CliError(
      `leadership did not move to node ${id} in time (is it up and caught up? 'raftctl status')`,
    );
  }
  return { leader: id, term: won.term, via: 'transfer' };
}
