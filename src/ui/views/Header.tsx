// The top two lines: the cluster's health at a glance.
import { Box, Text } from 'ink';
import type { ReplayInfo } from '../controller.js';
import type { ClusterSnapshot } from '../store.js';
import type { Theme } from '../theme.js';
import { clip } from './format.js';

/** The snapshot fields the header shows, plus what the app knows beside the store. */
export type HeaderProps = Pick<
  ClusterSnapshot,
  | 'clusterId'
  | 'leader'
  | 'term'
  | 'quorum'
  | 'commit'
  | 'commitRate'
  | 'alerts'
  | 'eventsTotal'
  | 'lost'
  | 'paused'
> & {
  title: string;
  replay: ReplayInfo | undefined;
  width: number;
  theme: Theme;
};

function replayLabel(r: ReplayInfo): string {
  const s = (r.elapsedMs / 1000).toFixed(1);
  const state = r.done ? 'END' : r.paused ? 'PAUSED' : 'playing';
  return `replay ${state} ×${r.speed} ${s}s ${r.position}/${r.total}`;
}

export function Header(p: HeaderProps) {
  const t = p.theme;
  const invariant = p.alerts.filter((a) => a.invariant);
  const newest = p.alerts.length > 0 ? p.alerts[p.alerts.length - 1] : undefined;
  const alertText =
    p.alerts.length === 0
      ? 'no alerts'
      : `${p.alerts.length} alert${p.alerts.length > 1 ? 's' : ''}${
          invariant.length > 0 ? ` (${invariant.length} invariant)` : ''
        }: ${p.alerts
          .slice()
          .reverse()
          .map((a) => a.text)
          .join(' · ')}`;
  const right = ` ${p.replay !== undefined ? replayLabel(p.replay) : p.paused ? 'PAUSED' : 'live'} `;
  const rate = p.commitRate >= 10 ? p.commitRate.toFixed(0) : p.commitRate.toFixed(1);
  // Segments by importance: on a narrow terminal the optional ones go first, so the line
  // never overflows (Ink would squeeze the Text nodes and cut letters out of words).
  type Seg = { key: string; text: string; color?: string | undefined; bold?: boolean; optional?: number };
  const segs: Seg[] = [
    { key: 'title', text: p.title, color: t.accent, bold: true, optional: 3 },
    ...(p.clusterId !== undefined && !p.title.endsWith(` ${p.clusterId}`)
      ? [{ key: 'cluster', text: ` ${clip(p.clusterId, 16)}`, optional: 1 }]
      : []),
    { key: 'sep1', text: ' │ ', optional: 3 },
    p.leader !== undefined
      ? { key: 'leader', text: `leader n${p.leader.id}`, color: t.leader, bold: true }
      : { key: 'leader', text: 'no leader', color: t.bad, bold: true },
    { key: 'term', text: ` term ${p.leader?.term ?? p.term} │ ` },
    {
      key: 'quorum',
      text:
        p.quorum.voters === 0
          ? 'quorum ?'
          : `quorum ${p.quorum.ok ? 'ok' : 'LOST'} ${p.quorum.reachable}/${p.quorum.voters}`,
      color: p.quorum.ok ? t.good : t.bad,
      bold: !p.quorum.ok,
    },
    { key: 'commit', text: ` │ commit ${p.commit}` },
    { key: 'rate', text: ` (${rate}/s)`, optional: 2 },
  ];
  const room = p.width - right.length;
  let shown = segs;
  for (const level of [1, 2, 3]) {
    if (shown.reduce((n, x) => n + x.text.length, 0) <= room) break;
    shown = shown.filter((x) => x.optional !== level);
  }
  const used = shown.reduce((n, x) => n + x.text.length, 0);
  return (
    <Box flexDirection="column" width={p.width} flexShrink={0}>
      <Box width={p.width} height={1} overflow="hidden">
        {shown.map((x) => (
          <Text key={x.key} color={x.color} bold={x.bold}>
            {x.text}
          </Text>
        ))}
        <Text>{' '.repeat(Math.max(0, p.width - used - right.length))}</Text>
        <Text inverse={p.paused || p.replay !== undefined} color={p.paused ? t.warn : t.muted}>
          {clip(right, Math.max(0, p.width - used))}
        </Text>
      </Box>
      <Box width={p.width} height={1} overflow="hidden">
        <Text
          wrap="truncate-end"
          color={newest === undefined ? t.muted : newest.level === 'error' ? t.bad : t.warn}
          bold={invariant.length > 0}
        >
          {clip(
            `${alertText}${p.lost > 0 ? ` │ ${p.lost} events dropped by nodes` : ''} │ ${p.eventsTotal} events`,
            p.width,
          )}
        </Text>
      </Box>
    </Box>
  );
}
