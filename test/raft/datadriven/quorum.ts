// The quorum scripts of etcd's Raft tests:
//
//   committed cfg=(1,2,3) [cfgj=(3,4)|cfgj=zero] idx=(12,_,5,...)
//   vote cfg=(1,2,3) [cfgj=...] votes=(y,n,_,...)
//
// `cfg` is a majority config; `cfgj` makes the test a joint one (`zero`: joined with the
// empty config). The idx/votes values are given positionally for the voters of cfg and
// then those of cfgj not named before; `_` means nothing is known for that voter.
// `committed` prints the bar chart of the acked indexes and the committed index; `vote`
// prints the election result. Both also cross-check results that must not depend on
// how the config is joined (with itself, with the empty config, in either order) and
// print a `<-- via ...` line when they disagree.
import { type AckedIndexer, JointConfig, MajorityConfig } from '../../../src/raft/quorum.js';
import { type Directive, type Handler, parseIntStrict } from './parse.js';

interface QuorumCase {
  ids: number[];
  idsJoint: number[];
  joint: boolean;
  /** Raw per-voter values in input order, `_` included. */
  values: string[];
}

function parseCase(d: Directive): QuorumCase {
  const c: QuorumCase = { ids: [], idsJoint: [], joint: false, values: [] };
  for (const arg of d.args) {
    switch (arg.key) {
      case 'cfg':
        c.ids.push(...arg.vals.map(parseIntStrict));
        break;
      case 'cfgj':
        c.joint = true;
        if (arg.vals.includes('zero')) {
          if (arg.vals.length !== 1) throw new Error("cannot mix 'zero' into configuration");
        } else c.idsJoint.push(...arg.vals.map(parseIntStrict));
        break;
      case 'idx':
      case 'votes':
        c.values.push(...arg.vals);
        break;
      default:
        throw new Error(`unknown arg ${arg.key}`);
    }
  }
  return c;
}

/**
 * Maps the values to the voters in the order they are named (cfg, then cfgj), each
 * voter once, so that a voter in both halves needs only one value. `_` maps to nothing.
 */
function assignValues<T>(c: QuorumCase, parse: (v: string) => T): Map<number, T> {
  const byId = new Map<number, T>();
  const seen = new Set<number>();
  let next = 0;
  for (const id of [...c.ids, ...c.idsJoint]) {
    if (seen.has(id) || next >= c.values.length) continue;
    seen.add(id);
    const v = c.values[next++]!;
    if (v !== '_') byId.set(id, parse(v));
  }
  return byId;
}

function parseIndex(v: string): number {
  const n = parseIntStrict(v);
  // `_` already means "unknown"; an explicit 0 would read the same in the bar chart.
  if (n === 0) throw new Error('cannot use 0 as idx');
  return n;
}

function parseVote(v: string): boolean {
  if (v === 'y') return true;
  if (v === 'n') return false;
  throw new Error(`unknown vote: ${v}`);
}

const formatIndex = (i: number): string => (i === Infinity ? '∞' : String(i));

function committed(c: QuorumCase, majority: MajorityConfig, other: MajorityConfig): string {
  const indexes = assignValues(c, parseIndex);
  const acked: AckedIndexer = (id) => indexes.get(id);
  let out = '';
  let idx: number;
  if (!c.joint) {
    idx = majority.committedIndex(acked);
    out += majority.describe(acked);
    const zeroJoint = new JointConfig(majority, new MajorityConfig()).committedIndex(acked);
    if (zeroJoint !== idx) out += `${formatIndex(zeroJoint)} <-- via zero-joint quorum\n`;
    const selfJoint = new JointConfig(majority, majority.clone()).committedIndex(acked);
    if (selfJoint !== idx) out += `${formatIndex(selfJoint)} <-- via self-joint quorum\n`;
  } else {
    const joint = new JointConfig(majority, other);
    out += joint.describe(acked);
    idx = joint.committedIndex(acked);
    const swapped = new JointConfig(other, majority).committedIndex(acked);
    if (swapped !== idx) out += `${formatIndex(swapped)} <-- via symmetry\n`;
  }
  return `${out}${formatIndex(idx)}\n`;
}

function vote(c: QuorumCase, majority: MajorityConfig, other: MajorityConfig): string {
  const votes = assignValues(c, parseVote);
  if (!c.joint) return `${majority.voteResult(votes)}\n`;
  const result = new JointConfig(majority, other).voteResult(votes);
  const swapped = new JointConfig(other, majority).voteResult(votes);
  return `${swapped !== result ? `${swapped} <-- via symmetry\n` : ''}${result}\n`;
}

export const handleQuorum: Handler = (d) => {
  const c = parseCase(d);
  const majority = new MajorityConfig(c.ids);
  const other = new MajorityConfig(c.idsJoint);
  const voters = new JointConfig(majority, other).ids();
  if (voters.length !== c.values.length) {
    return `error: mismatched input (explicit or _) for voters [${voters.join(' ')}]: [${c.values.join(' ')}]\n`;
  }
  switch (d.cmd) {
    case 'committed':
      return committed(c, majority, other);
    case 'vote':
      return vote(c, majority, other);
    default:
      throw new Error(`unknown command: ${d.cmd}`);
  }
};
