// The table of nodes. Columns have fixed widths and priorities: on a narrow terminal the
// least important columns are dropped (the node view shows everything), never wrapped.
import { Box, Text } from 'ink';
import type { NodeRow, TrackedField } from '../store.js';
import { roleLabel } from '../store.js';
import type { Theme } from '../theme.js';
import { num, padLeft, padRight } from './format.js';

export interface NodeTableProps {
  nodes: readonly NodeRow[];
  selected: number | undefined;
  leader: number | undefined;
  /** The snapshot's time; a cell changed less than highlightMs before it is highlighted. */
  now: number;
  highlightMs: number;
  width: number;
  /** Rows available for nodes (the header row comes on top). */
  maxRows: number;
  theme: Theme;
}

interface Column {
  key: string;
  title: string;
  width: number;
  /** Lower is more important; columns are added by priority while they fit. */
  priority: number;
  align: 'left' | 'right';
  field?: TrackedField;
  cell(r: NodeRow): string;
}

const progressState = (s: string | undefined) =>
  s === 'StateReplicate' ? 'Repl' : s === 'StateProbe' ? 'Probe' : s === 'StateSnapshot' ? 'Snap' : '-';

function netLabel(r: NodeRow): string {
  if (r.link === 'down') return 'down';
  if (r.link === 'connecting') return '…';
  return r.isolated ? 'iso' : 'up';
}

export const COLUMNS: readonly Column[] = [
  {
    key: 'id',
    title: 'ID',
    width: 4,
    priority: 0,
    align: 'left',
    cell: (r) => `n${r.id}${r.learner ? 'ℓ' : ''}`,
  },
  { key: 'address', title: 'ADDRESS', width: 15, priority: 6, align: 'left', cell: (r) => r.address || '-' },
  {
    key: 'role',
    title: 'ROLE',
    width: 9,
    priority: 0,
    align: 'left',
    field: 'role',
    cell: (r) => (r.state ? roleLabel(r.state.role) : '-'),
  },
  { key: 'net', title: 'NET', width: 4, priority: 0, align: 'left', cell: netLabel },
  {
    key: 'term',
    title: 'TERM',
    width: 4,
    priority: 0,
    align: 'right',
    field: 'term',
    cell: (r) => num(r.state?.term),
  },
  {
    key: 'vote',
    title: 'VOTE',
    width: 4,
    priority: 4,
    align: 'right',
    field: 'vote',
    cell: (r) => (r.state ? (r.state.vote === 0 ? '-' : `n${r.state.vote}`) : '-'),
  },
  {
    key: 'lead',
    title: 'LEAD',
    width: 4,
    priority: 1,
    align: 'right',
    field: 'leader',
    cell: (r) => (r.state ? (r.state.leader === 0 ? '-' : `n${r.state.leader}`) : '-'),
  },
  {
    key: 'commit',
    title: 'COMMIT',
    width: 6,
    priority: 0,
    align: 'right',
    field: 'commit',
    cell: (r) => num(r.state?.commit),
  },
  {
    key: 'applied',
    title: 'APPLY',
    width: 6,
    priority: 2,
    align: 'right',
    field: 'applied',
    cell: (r) => num(r.state?.applied),
  },
  {
    key: 'last',
    title: 'LAST',
    width: 6,
    priority: 1,
    align: 'right',
    field: 'lastIndex',
    cell: (r) => num(r.state?.lastIndex),
  },
  { key: 'lag', title: 'LAG', width: 4, priority: 1, align: 'right', cell: (r) => num(r.lag) },
  {
    key: 'match',
    title: 'MATCH',
    width: 6,
    priority: 2,
    align: 'right',
    cell: (r) => num(r.progress?.match),
  },
  { key: 'next', title: 'NEXT', width: 6, priority: 5, align: 'right', cell: (r) => num(r.progress?.next) },
  {
    key: 'pstate',
    title: 'PR',
    width: 5,
    priority: 2,
    align: 'left',
    cell: (r) => progressState(r.progress?.state),
  },
  {
    key: 'inflight',
    title: 'INFL',
    width: 4,
    priority: 3,
    align: 'right',
    cell: (r) => num(r.progress?.inflight),
  },
  {
    key: 'flags',
    title: 'PA',
    width: 2,
    priority: 3,
    align: 'left',
    // P = paused (probe sent, waiting), A = recently active.
    cell: (r) =>
      r.progress ? `${r.progress.paused ? 'P' : '·'}${r.progress.recentActive ? 'A' : '·'}` : '-',
  },
];

/** The columns that fit in `width` (one space between columns, two for the selection mark). */
export function columnsFor(width: number): Column[] {
  const byPriority = [...COLUMNS].sort((a, b) => a.priority - b.priority);
  const chosen = new Set<Column>();
  let used = 2;
  for (const c of byPriority) {
    const need = c.width + (chosen.size > 0 ? 1 : 0);
    if (used + need > width) continue;
    chosen.add(c);
    used += need;
  }
  return COLUMNS.filter((c) => chosen.has(c));
}

function roleColor(t: Theme, r: NodeRow): string | undefined {
  switch (r.state?.role) {
    case 'leader':
      return t.leader;
    case 'candidate':
    case 'precandidate':
      return t.candidate;
    case 'follower':
      return t.follower;
    default:
      return undefined;
  }
}

export function NodeTable(p: NodeTableProps) {
  const t = p.theme;
  const cols = columnsFor(p.width);
  // Keep the selected row visible when there are more nodes than rows.
  const rows = Math.max(1, p.maxRows);
  const selIndex = Math.max(
    0,
    p.nodes.findIndex((n) => n.id === p.selected),
  );
  const start = Math.min(Math.max(0, selIndex - rows + 1), Math.max(0, p.nodes.length - rows));
  const visible = p.nodes.slice(start, start + rows);
  const cellText = (c: Column, s: string) =>
    c.align === 'right' ? padLeft(s, c.width) : padRight(s, c.width);
  return (
    <Box flexDirection="column" width={p.width} flexShrink={0}>
      <Box height={1} overflow="hidden">
        <Text bold color={t.muted}>
          {`  ${cols.map((c) => cellText(c, c.title)).join(' ')}`}
        </Text>
      </Box>
      {p.nodes.length === 0 ? <Text color={t.muted}> connecting…</Text> : null}
      {visible.map((r) => {
        const selected = r.id === p.selected;
        const down = r.link !== 'up';
        return (
          <Box key={r.id} height={1} overflow="hidden">
            <Text color={t.accent} bold>
              {selected ? '▸ ' : '  '}
            </Text>
            {cols.map((c, i) => {
              const changedAt = c.field !== undefined ? r.changed[c.field] : undefined;
              const fresh = changedAt !== undefined && p.now - changedAt < p.highlightMs;
              let color: string | undefined;
              if (c.key === 'role') color = roleColor(t, r);
              if (c.key === 'net')
                color = r.link === 'down' ? t.bad : r.isolated ? t.warn : r.link === 'up' ? t.good : t.muted;
              if (c.key === 'id' && r.id === p.leader) color = t.leader;
              if (down && c.key !== 'net') color = t.muted;
              return (
                <Text key={c.key}>
                  {i > 0 ? ' ' : ''}
                  <Text
                    color={fresh ? t.changedFg : color}
                    backgroundColor={fresh ? t.changedBg : undefined}
                    bold={selected || (c.key === 'role' && r.state?.role === 'leader')}
                    inverse={fresh && t.changedBg === undefined}
                    dimColor={down && c.key !== 'net'}
                  >
                    {cellText(c, c.cell(r))}
                  </Text>
                </Text>
              );
            })}
          </Box>
        );
      })}
    </Box>
  );
}
