// What scripting commands print: the status report (one shape for the table and --json),
// aligned tables, and colour that respects NO_COLOR, --no-color and non-terminals.
import type { Member, NodeState } from '../protocol/control.js';

export type MemberRole = NodeState['role'] | 'down';
export type Health = 'ok' | 'no-leader' | 'lagging' | 'faults' | 'down';

/** One member in `raftctl status --json`. Numbers are null when the member is down. */
export interface MemberStatus {
  id: number;
  address: string;
  role: MemberRole;
  term: number | null;
  /** The leader this member follows; 0 when it knows none. */
  leader: number | null;
  commit: number | null;
  applied: number | null;
  lastIndex: number | null;
  learner: boolean;
  up: boolean;
  /** Entries behind the leader's log (from the leader's progress); null when unknown. */
  lag: number | null;
  health: Health;
  /** Why the member is down, when it is. */
  error?: string;
}

export interface StatusReport {
  members: MemberStatus[];
  /** The leader by its own account (highest term); 0 when there is none. */
  leader: number;
  term: number;
}

/** A member this far behind the leader is reported as lagging. */
export const LAG_WARN_ENTRIES = 100;

/** Builds the status report from the membership and each member's state (or why it has none). */
export function buildStatus(
  members: readonly Member[],
  states: ReadonlyMap<number, NodeState | Error>,
): StatusReport {
  let leaderState: NodeState | undefined;
  for (const st of states.values()) {
    if (st instanceof Error || st.role !== 'leader') continue;
    if (leaderState === undefined || st.term > leaderState.term) leaderState = st;
  }
  const rows: MemberStatus[] = [];
  for (const m of [...members].sort((a, b) => a.id - b.id)) {
    const st = states.get(m.id);
    if (st === undefined || st instanceof Error) {
      rows.push({
        id: m.id,
        address: m.address,
        role: 'down',
        term: null,
        leader: null,
        commit: null,
        applied: null,
        lastIndex: null,
        learner: m.learner,
        up: false,
        lag: null,
        health: 'down',
        ...(st instanceof Error ? { error: st.message } : {}),
      });
      continue;
    }
    const lag = lagOf(st, leaderState);
    let health: Health = 'ok';
    if (st.leader === 0) health = 'no-leader';
    else if (lag !== null && lag > LAG_WARN_ENTRIES) health = 'lagging';
    else if (st.faults.length > 0) health = 'faults';
    rows.push({
      id: m.id,
      address: m.address,
      role: st.role,
      term: st.term,
      leader: st.leader,
      commit: st.commit,
      applied: st.applied,
      lastIndex: st.lastIndex,
      learner: m.learner || st.config.learners.includes(m.id),
      up: true,
      lag,
      health,
    });
  }
  return { members: rows, leader: leaderState?.id ?? 0, term: leaderState?.term ?? 0 };
}

function lagOf(st: NodeState, leader: NodeState | undefined): number | null {
  if (leader === undefined) return null;
  if (st.id === leader.id) return 0;
  const pr = leader.progress?.find((p) => p.id === st.id);
  if (pr !== undefined) return Math.max(0, leader.lastIndex - pr.match);
  return Math.max(0, leader.commit - st.applied);
}

// ---------------------------------------------------------------------------------------
// Colour

export type Style = 'green' | 'yellow' | 'red' | 'cyan' | 'dim' | 'bold';
const SGR: Record<Style, [number, number]> = {
  green: [32, 39],
  yellow: [33, 39],
  red: [31, 39],
  cyan: [36, 39],
  dim: [2, 22],
  bold: [1, 22],
};

/**
 * Colour is on only for a terminal, and never with NO_COLOR (any non-empty value, per
 * no-color.org) or --no-color.
 */
export function colorEnabled(opts: { flag: boolean; isTTY: boolean; env: NodeJS.ProcessEnv }): boolean {
  if (!opts.flag) return false;
  if (opts.env.NO_COLOR !== undefined && opts.env.NO_COLOR !== '') return false;
  if (opts.env.FORCE_COLOR === '0') return false;
  return opts.isTTY;
}

export type Painter = (text: string, style: Style) => string;

export function painter(enabled: boolean): Painter {
  return enabled ? (text, style) => `\x1b[${SGR[style][0]}m${text}\x1b[${SGR[style][1]}m` : (text) => text;
}

const ANSI_RE = /\x1b\[[0-9;]*m/g;

/** Printed width, ignoring colour codes. */
export function visibleLength(s: string): number {
  return s.replace(ANSI_RE, '').length;
}

/** Left-aligned columns (numbers right-aligned), two spaces apart, no trailing spaces. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: readonly boolean[] = [],
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => {
        const pad = ' '.repeat(widths[i]! - visibleLength(c));
        return numeric[i] ? pad + c : c + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const ROLE_STYLE: Record<MemberRole, Style> = {
  leader: 'green',
  follower: 'cyan',
  candidate: 'yellow',
  precandidate: 'yellow',
  down: 'red',
};
const HEALTH_STYLE: Record<Health, Style> = {
  ok: 'green',
  'no-leader': 'yellow',
  lagging: 'yellow',
  faults: 'yellow',
  down: 'red',
};

const num = (n: number | null): string => (n === null ? '-' : String(n));

export function formatStatusTable(report: StatusReport, paint: Painter): string {
  const rows = report.members.map((m) => [
    String(m.id),
    m.address,
    paint(m.learner && m.role !== 'down' ? `${m.role} (learner)` : m.role, ROLE_STYLE[m.role]),
    num(m.term),
    m.leader === null ? '-' : m.leader === 0 ? 'none' : String(m.leader),
    num(m.commit),
    num(m.applied),
    num(m.lastIndex),
    num(m.lag),
    paint(m.health, HEALTH_STYLE[m.health]),
  ]);
  return table(
    ['ID', 'ADDRESS', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'LAST', 'LAG', 'HEALTH'],
    rows,
    [true, false, false, true, true, true, true, true, true, false],
  );
}

export function formatMembersTable(members: readonly Member[]): string {
  return table(
    ['ID', 'ADDRESS', 'TYPE'],
    [...members]
      .sort((a, b) => a.id - b.id)
      .map((m) => [String(m.id), m.address || '(unknown)', m.learner ? 'learner' : 'voter']),
    [true, false, false],
  );
}

/** `2024-06-10T10:00:00.000Z INFO  [raft] …` lines from the `log` command's records. */
export function formatLogRecord(r: {
  at: number;
  level: string;
  component: string;
  message: string;
}): string {
  return `${new Date(r.at).toISOString()} ${r.level.toUpperCase().padEnd(5)} [${r.component}] ${r.message}`;
}
