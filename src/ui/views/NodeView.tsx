// One node in depth: its state and HardState, the progress of every peer (as the leader
// sees it), its transport, the tail of its log with committed/applied marks, and its own
// recent events.
import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { NO_FILTER } from '../commandline.js';
import type { NodeRow } from '../store.js';
import { roleLabel } from '../store.js';
import type { Theme } from '../theme.js';
import { EventStream } from './EventStream.js';
import { clip, nodeName, padLeft, padRight } from './format.js';

export interface NodeViewProps {
  node: NodeRow;
  /** The leader's row, whose progress table the view shows for a follower. */
  leader: NodeRow | undefined;
  height: number;
  width: number;
  paused: boolean;
  theme: Theme;
}

function Line(p: { width: number; children: ReactNode }) {
  return (
    <Box height={1} width={p.width} overflow="hidden" flexShrink={0}>
      {p.children}
    </Box>
  );
}

export function NodeView(p: NodeViewProps) {
  const t = p.theme;
  const n = p.node;
  const s = n.state;
  const progressOwner = s?.progress !== undefined ? n : p.leader;
  const progress = progressOwner?.state?.progress ?? [];
  const net = n.link === 'down' ? 'DOWN' : n.isolated ? 'ISOLATED' : n.link === 'up' ? 'up' : 'connecting';
  const lines: ReactNode[] = [];
  lines.push(
    <Line key="title" width={p.width}>
      <Text bold color={t.accent}>
        {`n${n.id}${n.learner ? ' (learner)' : ''} `}
      </Text>
      <Text>{`${n.address} · `}</Text>
      <Text bold color={s?.role === 'leader' ? t.leader : s?.role === 'follower' ? t.follower : t.candidate}>
        {roleLabel(s?.role)}
      </Text>
      <Text color={n.link === 'up' && !n.isolated ? t.good : t.bad}>{` · ${net}`}</Text>
      <Text color={t.muted}>{'   Esc back'}</Text>
    </Line>,
  );
  if (s !== undefined) {
    lines.push(
      <Line key="hs" width={p.width}>
        <Text>
          {clip(
            `HardState term ${s.term} vote ${nodeName(s.vote)} commit ${s.commit} · leader ${nodeName(s.leader)} · applied ${s.applied} · log ${s.firstIndex}..${s.lastIndex} · snapshot ${s.snapshotIndex} · keys ${s.kvKeys}`,
            p.width,
          )}
        </Text>
      </Line>,
    );
    const cs = s.config;
    const peers = s.transport
      .map(
        (tp) =>
          `${nodeName(tp.peer)} ${tp.connected ? 'ok' : `✗${tp.lastError ? ` ${tp.lastError}` : ''}`}${tp.queued > 0 ? ` q${tp.queued}` : ''}`,
      )
      .join(', ');
    lines.push(
      <Line key="cfg" width={p.width}>
        <Text>
          {clip(
            `voters ${cs.voters.join(',')}${cs.votersOutgoing.length > 0 ? ` (joint: ${cs.votersOutgoing.join(',')})` : ''}${cs.learners.length > 0 ? ` learners ${cs.learners.join(',')}` : ''} · peers ${peers || '-'}`,
            p.width,
          )}
        </Text>
      </Line>,
    );
    if (s.faults.length > 0) {
      lines.push(
        <Line key="faults" width={p.width}>
          <Text color={t.warn}>
            {clip(
              `faults: ${s.faults.map((f) => `${f.kind}${f.peers ? ` ${f.peers.join(',')}` : ''}`).join('; ')}`,
              p.width,
            )}
          </Text>
        </Line>,
      );
    }
  } else {
    lines.push(
      <Line key="nostate" width={p.width}>
        <Text color={t.muted}>no state received yet</Text>
      </Line>,
    );
  }
  lines.push(
    <Line key="ph" width={p.width}>
      <Text bold color={t.muted}>
        {clip(
          progressOwner === undefined
            ? 'Progress: no leader known'
            : `Progress (as ${nodeName(progressOwner.id)} sees it)   MATCH   NEXT STATE  INFL PAUSED ACTIVE`,
          p.width,
        )}
      </Text>
    </Line>,
  );
  for (const pr of progress) {
    lines.push(
      <Line key={`p${pr.id}`} width={p.width}>
        <Text color={pr.id === n.id ? t.accent : undefined}>
          {`  ${padRight(`${nodeName(pr.id)}${pr.learner ? 'ℓ' : ''}`, 28)} ${padLeft(String(pr.match), 6)} ${padLeft(String(pr.next), 6)} ${padRight(pr.state.replace('State', ''), 9)} ${padLeft(String(pr.inflight), 4)} ${padRight(pr.paused ? 'yes' : 'no', 6)} ${pr.recentActive ? 'yes' : 'no'}${pr.pendingSnapshot > 0 ? ` snap@${pr.pendingSnapshot}` : ''}`}
        </Text>
      </Line>,
    );
  }
  const remaining = Math.max(2, p.height - lines.length);
  const logRows = Math.max(1, Math.floor(remaining / 2) - 1);
  const commit = s?.commit ?? 0;
  const applied = s?.applied ?? 0;
  const tail = n.logTail.slice(-logRows);
  return (
    <Box flexDirection="column" width={p.width} height={p.height} overflow="hidden">
      {lines}
      <Line width={p.width}>
        <Text bold color={t.muted}>
          {clip(`── Log tail (✓ committed, ● applied) ${'─'.repeat(p.width)}`, p.width)}
        </Text>
      </Line>
      {tail.length === 0 ? (
        <Line width={p.width}>
          <Text color={t.muted}> no entries seen yet</Text>
        </Line>
      ) : null}
      {tail.map((e) => (
        <Line key={e.index} width={p.width}>
          <Text color={e.index <= applied ? t.good : e.index <= commit ? t.follower : t.muted}>
            {`${e.index <= commit ? '✓' : ' '}${e.index <= applied ? '●' : ' '} `}
          </Text>
          <Text>
            {clip(
              `${padLeft(String(e.index), 6)} t${e.term} ${e.type.replace('Entry', '')} ${e.data}`,
              p.width - 3,
            )}
          </Text>
        </Line>
      ))}
      <EventStream
        items={n.events}
        filter={NO_FILTER}
        scroll={0}
        height={Math.max(1, p.height - lines.length - 1 - Math.max(1, tail.length))}
        width={p.width}
        paused={p.paused}
        title={`n${n.id} events`}
        theme={t}
      />
    </Box>
  );
}
