// `raftctl member list|add|add-learner|promote|remove`: membership changes, run on the leader.
import type { Argv } from 'yargs';
import type { Member } from '../../protocol/control.js';
import { formatHostPort, parseHostPort, parseNodeId } from '../args.js';
import { ManagedCluster } from '../cluster.js';
import type { ClusterSession } from '../connect.js';
import { formatMembersTable } from '../format.js';
import { jsonOption, out, printJson, say, type TargetArgs, targetOptions, withSession } from './common.js';

interface Args extends TargetArgs {
  json: boolean;
}

async function currentMembers(s: ClusterSession): Promise<Member[]> {
  return [...(await s.onLeader('members', {}))].sort((a, b) => a.id - b.id);
}

function idAndAddress<T>(a: Argv<T>) {
  return jsonOption(targetOptions(a))
    .positional('id', { type: 'string', demandOption: true, describe: "The new member's id" })
    .positional('address', { type: 'string', demandOption: true, describe: 'HOST:PORT it will listen on' });
}

function startHint(id: number, address: string, members: Member[]): string {
  const peers = members.map((m) => `${m.id}=${m.address}`).join(',');
  return `start it with: raftctl node --id ${id} --listen ${address} --peers ${peers} --data-dir ./n${id} --join`;
}

export function memberCommand(y: Argv): Argv {
  return y.command('member', 'List or change the cluster membership', (m) =>
    m
      .command(
        'list',
        'List the members (id, address, voter or learner)',
        (a) =>
          jsonOption(targetOptions(a)).example(
            '$0 member list --json',
            '{"members":[{"id":1,"address":"…","learner":false},…]}',
          ),
        async (argv) => {
          const members = await withSession(argv as Args, (s) => currentMembers(s));
          if (argv.json) printJson({ members });
          else out(formatMembersTable(members));
        },
      )
      .command(
        'add <id> <address>',
        'Add a voter (then start the node with `raftctl node … --join`)',
        (a) => idAndAddress(a).example('$0 member add 4 127.0.0.1:7004', 'Node 4 becomes a voter'),
        (argv) => add(argv as Args & { id: string; address: string }, false),
      )
      .command(
        'add-learner <id> <address>',
        'Add a learner: it receives the log but does not vote',
        (a) =>
          idAndAddress(a).example(
            '$0 member add-learner 4 127.0.0.1:7004',
            'Then `member promote 4` once it caught up',
          ),
        (argv) => add(argv as Args & { id: string; address: string }, true),
      )
      .command(
        'promote <id>',
        'Promote a learner to voter',
        (a) =>
          jsonOption(targetOptions(a))
            .positional('id', { type: 'string', demandOption: true, describe: 'Learner id' })
            .example('$0 member promote 4', 'Node 4 becomes a voter'),
        async (argv) => {
          const id = parseNodeId(argv.id);
          const members = await withSession(argv as Args, async (s) => {
            await s.onLeader('member-promote', { id });
            return currentMembers(s);
          });
          if (argv.json) printJson({ id, members });
          else out(`promoted node ${id} to voter`);
        },
      )
      .command(
        'remove <id>',
        'Remove a member (the removed node stops itself)',
        (a) =>
          jsonOption(targetOptions(a))
            .positional('id', { type: 'string', demandOption: true, describe: 'Member id' })
            .example('$0 member remove 3', 'Node 3 leaves the cluster'),
        async (argv) => {
          const id = parseNodeId(argv.id);
          const { members, cluster } = await withSession(argv as Args, async (s, target) => {
            s.member(id);
            await s.onLeader('member-remove', { id });
            return {
              members: await currentMembers(s).catch(() => s.members.filter((x) => x.id !== id)),
              cluster: target.cluster,
            };
          });
          // A node of a cluster started by `up` is forgotten too, so `up` does not restart it.
          if (cluster !== undefined && new ManagedCluster(cluster.dir, cluster.file).forget(id)) {
            say(`raftctl: node ${id} removed from ${cluster.dir}/cluster.json (its data dir is kept)`);
          }
          if (argv.json) printJson({ id, members });
          else out(`removed node ${id}`);
        },
      )
      .demandCommand(1, 'Name a member subcommand: list, add, add-learner, promote or remove.')
      .example('$0 member list', 'Who is in the cluster')
      .example('$0 member add-learner 4 127.0.0.1:7004', 'Add a learner'),
  );
}

async function add(argv: Args & { id: string; address: string }, learner: boolean): Promise<void> {
  const id = parseNodeId(argv.id);
  const address = formatHostPort(parseHostPort(argv.address));
  const members = await withSession(argv, async (s) => {
    await s.onLeader('member-add', { id, address, learner });
    return currentMembers(s);
  });
  if (argv.json) printJson({ id, address, learner, members });
  else {
    out(`added node ${id} (${address}) as a ${learner ? 'learner' : 'voter'}`);
    say(`raftctl: ${startHint(id, address, members)}`);
  }
}
