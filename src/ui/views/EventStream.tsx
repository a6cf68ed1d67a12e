// The event stream: every node's Ready events and messages as their describe lines, plus
// elections, leader changes, conf changes, faults and the console's own notes. Only the
// lines that fit are rendered; filtering happens here on the (bounded) published list.
import { Box, Text } from 'ink';
import { type EventFilter, isFilterEmpty, matchesFilter } from '../commandline.js';
import type { StreamItem } from '../store.js';
import { nodeColor, type Theme } from '../theme.js';
import { clip, clock } from './format.js';

export interface EventStreamProps {
  items: readonly StreamItem[];
  filter: EventFilter;
  /** Lines back from the newest (clamped to what is kept). */
  scroll: number;
  height: number;
  width: number;
  paused: boolean;
  title?: string;
  theme: Theme;
}

/** The lines the stream shows for a given filter/scroll/height, oldest first. */
export function visibleItems(
  items: readonly StreamItem[],
  filter: EventFilter,
  scroll: number,
  rows: number,
): { lines: StreamItem[]; matched: number; offset: number } {
  const matched = isFilterEmpty(filter) ? items : items.filter((i) => matchesFilter(i, filter));
  const maxOffset = Math.max(0, matched.length - rows);
  const offset = Math.min(scroll, maxOffset);
  const end = matched.length - offset;
  return { lines: matched.slice(Math.max(0, end - rows), end), matched: matched.length, offset };
}

function itemColor(t: Theme, i: StreamItem): string | undefined {
  if (i.level === 'error') return t.bad;
  if (i.level === 'warn') return t.warn;
  if (i.kind === 'election' || i.kind === 'leader') return t.candidate;
  if (i.kind === 'confchange' || i.kind === 'snapshot') return t.accent;
  return undefined;
}

export function EventStream(p: EventStreamProps) {
  const t = p.theme;
  const rows = Math.max(0, p.height - 1);
  const { lines, matched, offset } = visibleItems(p.items, p.filter, p.scroll, rows);
  const state = offset > 0 ? `↑ ${offset} back` : p.paused ? 'paused' : 'live';
  const filterText = isFilterEmpty(p.filter) ? 'all' : p.filter.text;
  const head = `${p.title ?? 'Events'} [${filterText}] ${matched} kept · ${state}`;
  const wide = p.width >= 100;
  return (
    <Box flexDirection="column" width={p.width} height={p.height} overflow="hidden">
      <Box height={1} overflow="hidden">
        <Text bold color={t.muted}>
          {clip(`── ${head} ${'─'.repeat(p.width)}`, p.width)}
        </Text>
      </Box>
      {lines.map((i) => {
        const time = wide ? clock(i.at) : clock(i.at).slice(3);
        const tag = i.node === 0 ? '**' : `n${i.node}`;
        const rest = p.width - time.length - tag.length - 2;
        return (
          <Box key={i.n} height={1} overflow="hidden">
            <Text color={t.muted}>{time} </Text>
            <Text color={i.node === 0 ? t.accent : nodeColor(t, i.node)} bold>
              {tag}
            </Text>
            <Text color={itemColor(t, i)} bold={i.level === 'error'}>
              {' '}
              {clip(i.text, rest)}
            </Text>
          </Box>
        );
      })}
    </Box>
  );
}
