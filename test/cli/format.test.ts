import { describe, expect, it } from 'vitest';
import {
  buildStatus,
  colorEnabled,
  formatMembersTable,
  formatStatusTable,
  painter,
  table,
  visibleLength,
} from '../../src/cli/format.js';
import type { Member, NodeState } from '../../src/protocol/control.js';
import { nodeState } from '../ui/fixtures.js';

/** A follower's state as the ui fixtures build it, at commit 9. */
const state = (id: number, over: Partial<NodeState> = {}): NodeState =>
  nodeState(id, { commit: 9, applied: 9, lastIndex: 9, at: 0, ...over });

const members: Member[] = [
  { id: 2, address: '127.0.0.1:7002', learner: false },
  { id: 1, address: '127.0.0.1:7001', learner: false },
  { id: 3, address: '127.0.0.1:7003', learner: false },
];

const progress = (id: number, match: number) => ({
  id,
  match,
  next: match + 1,
  state: 'StateReplicate' as const,
  inflight: 0,
  paused: false,
  recentActive: true,
  learner: false,
  pendingSnapshot: 0,
});

describe('buildStatus', () => {
  it('has the documented JSON shape, sorted by id, with lag from the leader progress', () => {
    const states = new Map<number, NodeState | Error>([
      [
        1,
        state(1, {
          role: 'leader',
          lastIndex: 209,
          commit: 209,
          applied: 209,
          progress: [progress(1, 209), progress(2, 209), progress(3, 9)],
        }),
      ],
      [2, state(2, { commit: 209, applied: 209, lastIndex: 209 })],
      [3, new Error('connection refused')],
    ]);
    const r = buildStatus(members, states);
    expect(r.leader).toBe(1);
    expect(r.term).toBe(2);
    expect(r.members.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(r.members[0]).toEqual({
      id: 1,
      address: '127.0.0.1:7001',
      role: 'leader',
      term: 2,
      leader: 1,
      commit: 209,
      applied: 209,
      lastIndex: 209,
      learner: false,
      up: true,
      lag: 0,
      health: 'ok',
    });
    expect(r.members[2]).toMatchObject({
      id: 3,
      role: 'down',
      up: false,
      term: null,
      lag: null,
      health: 'down',
      error: 'connection refused',
    });
  });

  it('reports lagging, faults, no-leader and learners', () => {
    const states = new Map<number, NodeState | Error>([
      [1, state(1, { role: 'leader', lastIndex: 500, progress: [progress(2, 100), progress(3, 500)] })],
      [2, state(2, { applied: 100 })],
      [
        3,
        state(3, {
          faults: [{ kind: 'delay', ms: 5 }],
          config: { voters: [1, 2], votersOutgoing: [], learners: [3], learnersNext: [], autoLeave: false },
        }),
      ],
    ]);
    const r = buildStatus(members, states);
    expect(r.members[1]).toMatchObject({ lag: 400, health: 'lagging' });
    expect(r.members[2]).toMatchObject({ health: 'faults', learner: true });
    const none = buildStatus(members, new Map([[2, state(2, { leader: 0, role: 'candidate' })]]));
    expect(none.leader).toBe(0);
    expect(none.members[1]).toMatchObject({ role: 'candidate', health: 'no-leader', lag: null });
  });

  it('prefers the leader with the highest term when two claim it', () => {
    const states = new Map<number, NodeState | Error>([
      [1, state(1, { role: 'leader', term: 2 })],
      [2, state(2, { role: 'leader', term: 3, leader: 2 })],
    ]);
    expect(buildStatus(members, states)).toMatchObject({ leader: 2, term: 3 });
  });
});

describe('tables and colour', () => {
  it('aligns columns, right-aligns numbers, ignores colour codes in widths', () => {
    const paint = painter(true);
    const t = table(
      ['ID', 'NAME'],
      [
        [paint('1', 'green'), 'a'],
        ['10', 'bbb'],
      ],
      [true, false],
    );
    expect(t.replace(/\x1b\[[0-9;]*m/g, '')).toBe('ID  NAME\n 1  a\n10  bbb');
    expect(visibleLength(paint('abc', 'red'))).toBe(3);
  });
  it('formats the status table without colour when disabled', () => {
    const r = buildStatus(members, new Map([[1, state(1, { role: 'leader' })]]));
    const text = formatStatusTable(r, painter(false));
    expect(text.split('\n')[0]).toMatch(
      /^ID\s+ADDRESS\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAST\s+LAG\s+HEALTH$/,
    );
    expect(text).toContain('leader');
    expect(text).toMatch(/2\s+127\.0\.0\.1:7002\s+down\s+-/);
    expect(text).not.toContain('\x1b');
  });
  it('formats members', () => {
    expect(formatMembersTable([{ id: 4, address: 'h:4', learner: true }, ...members])).toContain(
      ' 4  h:4             learner',
    );
  });
  it('honours NO_COLOR, --no-color, FORCE_COLOR=0 and non-terminals', () => {
    expect(colorEnabled({ flag: true, isTTY: true, env: {} })).toBe(true);
    expect(colorEnabled({ flag: true, isTTY: true, env: { NO_COLOR: '1' } })).toBe(false);
    expect(colorEnabled({ flag: true, isTTY: true, env: { NO_COLOR: '' } })).toBe(true);
    expect(colorEnabled({ flag: true, isTTY: true, env: { FORCE_COLOR: '0' } })).toBe(false);
    expect(colorEnabled({ flag: false, isTTY: true, env: {} })).toBe(false);
    expect(colorEnabled({ flag: true, isTTY: false, env: {} })).toBe(false);
  });
});
