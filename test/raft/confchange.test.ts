import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Changer, confStateEquivalent, restore } from '../../src/raft/confchange.js';
import { progressMapToString } from '../../src/raft/progress.js';
import { configToString, ProgressTracker } from '../../src/raft/tracker.js';
import type { ConfChangeSingle, ConfChangeType, ConfState } from '../../src/raft/types.js';

const PREFIX: Record<string, ConfChangeType> = {
  v: 'ConfChangeAddNode',
  l: 'ConfChangeAddLearnerNode',
  r: 'ConfChangeRemoveNode',
  u: 'ConfChangeUpdateNode',
};

/** `v1 l2 r3 u4` → changes. */
function ccs(s: string): ConfChangeSingle[] {
  return s
    .split(' ')
    .filter(Boolean)
    .map((t) => ({ type: PREFIX[t[0]!]!, nodeId: Number(t.slice(1)) }));
}

/** A tracker and a changer over it; `apply` installs a result like the Raft node does. */
function setup(lastIndex = 1) {
  const t = new ProgressTracker(10, Infinity);
  const ch = new Changer(t, lastIndex);
  const apply = (r: ReturnType<Changer['simple']>) => {
    [t.config, t.progress] = r;
    return `${configToString(t.config)}\n${progressMapToString(t.progress)}`;
  };
  return { t, ch, apply };
}

function cs(fields: Partial<ConfState>): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false, ...fields };
}

describe('Changer.simple', () => {
  it('adds, demotes, promotes and removes one voter at a time', () => {
    const { ch, apply } = setup();
    apply(ch.simple(...ccs('v1')));
    apply(ch.simple(...ccs('v2 l3')));
    expect(apply(ch.simple(...ccs('l2')))).toBe(
      'voters=(1) learners=(2 3)\n' +
        '1: StateProbe match=0 next=1\n' +
        '2: StateProbe match=0 next=1 learner\n' +
        '3: StateProbe match=0 next=1 learner\n',
    );
    expect(apply(ch.simple(...ccs('v3 r2')))).toBe(
      'voters=(1 3)\n1: StateProbe match=0 next=1\n3: StateProbe match=0 next=1\n',
    );
  });

  it('refuses to change more than one voter, or to remove them all', () => {
    const { ch, apply } = setup();
    apply(ch.simple(...ccs('v1')));
    apply(ch.simple(...ccs('v2')));
    expect(() => ch.simple(...ccs('v3 v4'))).toThrow(
      'more than one voter changed without entering joint config',
    );
    expect(() => ch.simple(...ccs('r1 v5'))).toThrow(
      'more than one voter changed without entering joint config',
    );
    expect(() => ch.simple(...ccs('r1 r2'))).toThrow('removed all voters');
    expect(() => ch.simple(...ccs('l1 l2'))).toThrow('removed all voters');
  });

  it('ignores node id 0, updates and removals of unknown nodes', () => {
    const { ch, apply } = setup();
    apply(ch.simple(...ccs('v1')));
    expect(apply(ch.simple(...ccs('v0 l0 r0 u1 r7')))).toBe('voters=(1)\n1: StateProbe match=0 next=1\n');
  });

  it('starts new nodes at the last index (at least 1), recently active', () => {
    const { t, ch, apply } = setup(0);
    apply(ch.simple(...ccs('v1')));
    expect(t.progress.get(1)!.next).toBe(1);
    ch.lastIndex = 17;
    apply(ch.simple(...ccs('l2')));
    expect(t.progress.get(2)).toMatchObject({ next: 17, match: 0, recentActive: true, isLearner: true });
    expect(t.progress.get(2)!.inflights.size).toBe(10);
  });

  it('never modifies the tracker it reads', () => {
    const { t, ch, apply } = setup();
    apply(ch.simple(...ccs('v1')));
    apply(ch.simple(...ccs('v2')));
    const before = `${configToString(t.config)}\n${progressMapToString(t.progress)}`;
    const pr1 = t.progress.get(1)!;
    ch.simple(...ccs('l1'));
    ch.enterJoint(true, ...ccs('r2 v3 l1'));
    expect(() => ch.simple(...ccs('r1 r2'))).toThrow();
    expect(`${configToString(t.config)}\n${progressMapToString(t.progress)}`).toBe(before);
    expect(t.progress.get(1)).toBe(pr1);
    expect(pr1.isLearner).toBe(false);
  });

  it('keeps the progress of a node across promotion and demotion', () => {
    const { t, ch, apply } = setup();
    apply(ch.simple(...ccs('v1 l2')));
    t.progress.get(2)!.match = 7;
    t.progress.get(2)!.next = 8;
    apply(ch.simple(...ccs('v2')));
    expect(t.progress.get(2)).toMatchObject({ match: 7, next: 8, isLearner: false });
  });
});

describe('Changer.enterJoint / leaveJoint', () => {
  it('enters and leaves a joint config', () => {
    const { ch, apply } = setup();
    apply(ch.simple(...ccs('v1')));
    apply(ch.simple(...ccs('v2')));
    expect(apply(ch.enterJoint(true, ...ccs('r1 v3 l4')))).toBe(
      'voters=(2 3)&&(1 2) learners=(4) autoleave\n' +
        '1: StateProbe match=0 next=1\n' +
        '2: StateProbe match=0 next=1\n' +
        '3: StateProbe match=0 next=1\n' +
        '4: StateProbe match=0 next=1 learner\n',
    );
    expect(apply(ch.leaveJoint())).toBe(
      'voters=(2 3) learners=(4)\n' +
        '2: StateProbe match=0 next=1\n' +
        '3: StateProbe match=0 next=1\n' +
        '4: StateProbe match=0 next=1 learner\n',
    );
  });

  it('stages the demotion of an outgoing voter in learners_next', () => {
    const { t, ch, apply } = setup();
    apply(ch.simple(...ccs('v1')));
    t.progress.get(1)!.match = 3;
    expect(apply(ch.enterJoint(false, ...ccs('v2 l1')))).toBe(
      'voters=(2)&&(1) learners_next=(1)\n1: StateProbe match=3 next=1\n2: StateProbe match=0 next=1\n',
    );
    expect(t.progress.get(1)!.isLearner).toBe(false);
    apply(ch.leaveJoint());
    expect(configToString(t.config)).toBe('voters=(2) learners=(1)');
    expect(t.progress.get(1)).toMatchObject({ match: 3, isLearner: true });
  });

  it('has etcd safety checks', () => {
    const { ch, apply } = setup();
    expect(() => ch.leaveJoint()).toThrow("can't leave a non-joint config");
    expect(() => ch.enterJoint(false)).toThrow("can't make a zero-voter config joint");
    expect(() => ch.enterJoint(false, ...ccs('v1'))).toThrow("can't make a zero-voter config joint");
    apply(ch.simple(...ccs('v1')));
    expect(() => ch.enterJoint(false, ...ccs('r1'))).toThrow('removed all voters');
    expect(apply(ch.enterJoint(false))).toBe('voters=(1)&&(1)\n1: StateProbe match=0 next=1\n');
    expect(() => ch.enterJoint(true)).toThrow('config is already joint');
    expect(() => ch.simple(...ccs('l15'))).toThrow("can't apply simple config change in joint config");
  });

  it('rejects an input that breaks the invariants', () => {
    const { t, ch, apply } = setup();
    apply(ch.simple(...ccs('v1')));
    t.progress.delete(1);
    expect(() => ch.simple(...ccs('v2'))).toThrow('no progress for 1');
    apply(new Changer(new ProgressTracker(10), 1).simple(...ccs('v1 l2')));
    t.progress.get(2)!.isLearner = false;
    expect(() => ch.simple(...ccs('v3'))).toThrow('2 is in Learners, but is not marked as learner');
  });
});

describe('restore', () => {
  const roundTrip = (state: ConfState) => {
    const [cfg, trk] = restore(new Changer(new ProgressTracker(20), 10), state);
    const t = new ProgressTracker(20);
    t.config = cfg;
    t.progress = trk;
    return t;
  };

  it('rebuilds a joint config from a ConfState', () => {
    const state = cs({
      voters: [1, 2, 3],
      votersOutgoing: [1, 2, 4, 6],
      learners: [5],
      learnersNext: [4],
      autoLeave: true,
    });
    const t = roundTrip(state);
    expect(configToString(t.config)).toBe(
      'voters=(1 2 3)&&(1 2 4 6) learners=(5) learners_next=(4) autoleave',
    );
    expect(confStateEquivalent(state, t.confState())).toBeUndefined();
    expect([...t.progress.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rebuilds a simple config, and nothing from an empty ConfState', () => {
    const t = roundTrip(cs({ voters: [3, 1], learners: [7] }));
    expect(configToString(t.config)).toBe('voters=(1 3) learners=(7)');
    expect(roundTrip(cs({})).progress.size).toBe(0);
  });

  it('fails for learners without voters', () => {
    expect(() => roundTrip(cs({ learners: [1] }))).toThrow('removed all voters');
  });

  it('does not modify the changer', () => {
    const t = new ProgressTracker(20);
    const ch = new Changer(t, 10);
    const [cfg] = restore(ch, cs({ voters: [1, 2] }));
    expect(cfg).not.toBe(t.config);
    expect(t.config.voters.incoming.size).toBe(0);
    expect(t.progress.size).toBe(0);
    expect(restore(ch, cs({}))[0]).not.toBe(t.config);
  });

  it('round-trips random valid ConfStates', () => {
    // Nodes 1..12 each get a role; a joint config needs outgoing voters and may have
    // staged learners only among outgoing voters that are not incoming voters.
    const role = fc.constantFrom('none', 'voter', 'learner', 'out', 'both', 'outLearnerNext', 'outLearner');
    fc.assert(
      fc.property(fc.array(role, { minLength: 12, maxLength: 12 }), fc.boolean(), (roles, autoLeave) => {
        const state = cs({});
        roles.forEach((r, i) => {
          const id = i + 1;
          if (r === 'voter' || r === 'both') state.voters.push(id);
          if (r === 'out' || r === 'both' || r === 'outLearnerNext' || r === 'outLearner') {
            state.votersOutgoing.push(id);
          }
          if (r === 'learner') state.learners.push(id);
          if (r === 'outLearnerNext') state.learnersNext.push(id);
        });
        fc.pre(state.voters.length > 0);
        state.autoLeave = autoLeave && state.votersOutgoing.length > 0;
        expect(confStateEquivalent(state, roundTrip(state).confState())).toBeUndefined();
      }),
    );
  });
});

describe('confStateEquivalent', () => {
  it('ignores order and reports differences', () => {
    expect(
      confStateEquivalent(cs({ voters: [2, 1], learners: [4, 3] }), cs({ voters: [1, 2], learners: [3, 4] })),
    ).toBe(undefined);
    const diff = confStateEquivalent(cs({ voters: [1] }), cs({ voters: [1], autoLeave: true }));
    expect(diff).toContain('ConfStates not equivalent after sorting');
    expect(diff).toContain('autoLeave=true');
    expect(confStateEquivalent(cs({ voters: [1] }), cs({ voters: [1], learnersNext: [2] }))).toBeDefined();
  });
});
