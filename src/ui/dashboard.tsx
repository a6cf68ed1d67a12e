// The console's root component: lays the views out in rows−1 lines (a frame as tall as the
// terminal makes Ink clear and redraw the whole screen every frame) and forwards keys to the
// controller. It reads the stores through hooks; the views below it only take props.
import { Box, useInput, useStdout } from 'ink';
import { type ReactNode, useEffect, useState } from 'react';
import { useController, useStore, useUi } from './hooks.js';
import { footerHints, type KeyBinding, keyPresses } from './keymap.js';
import type { Theme } from './theme.js';
import { EventStream } from './views/EventStream.js';
import { Footer } from './views/Footer.js';
import { Header } from './views/Header.js';
import { HelpView } from './views/HelpView.js';
import { NodeTable } from './views/NodeTable.js';
import { NodeView } from './views/NodeView.js';
import { Prompt } from './views/Prompt.js';
import { StatusLine } from './views/StatusLine.js';

export interface DashboardProps {
  keymap: readonly KeyBinding[];
  theme: Theme;
  mode: 'live' | 'replay';
  title?: string;
  highlightMs?: number;
  /** Fixed size for tests; otherwise the terminal's, following resizes. */
  size?: { columns: number; rows: number };
}

function useTerminalSize(fixed: DashboardProps['size']): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    if (fixed !== undefined) return;
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  });
  return fixed ?? size;
}

/** Lines the node table gets (its header included) for `nodes` nodes in `height` lines. */
export function tableHeight(nodes: number, height: number): number {
  const cap = Math.max(2, Math.floor((height - 4) / 2));
  return Math.min(Math.max(1, nodes) + 1, cap);
}

export function Dashboard(p: DashboardProps) {
  const controller = useController();
  const ui = useUi();
  const snap = useStore((s) => s);
  const { columns, rows } = useTerminalSize(p.size);
  useInput((input, key) => {
    for (const k of keyPresses(input, key)) controller.dispatch({ type: 'key', ...k });
  });

  const width = Math.max(20, columns);
  // rows−1: never as tall as the terminal (see the header comment).
  const height = Math.max(6, rows - 1);
  const t = p.theme;
  const selected = controller.selectedId();
  const headerHeight = 2;
  const bottom = 2;
  const body = height - headerHeight - bottom;

  let main: ReactNode;
  if (ui.view === 'help') {
    main = <HelpView keymap={p.keymap} mode={p.mode} height={body} width={width} theme={t} />;
  } else if (ui.view === 'node' && selected !== undefined) {
    const node = snap.nodes.find((n) => n.id === selected);
    const leader = snap.leader === undefined ? undefined : snap.nodes.find((n) => n.id === snap.leader?.id);
    main =
      node === undefined ? null : (
        <NodeView node={node} leader={leader} height={body} width={width} paused={snap.paused} theme={t} />
      );
  } else {
    const th = tableHeight(snap.nodes.length, body);
    main = (
      <>
        <NodeTable
          nodes={snap.nodes}
          selected={selected}
          leader={snap.leader?.id}
          now={snap.now}
          highlightMs={p.highlightMs ?? 1500}
          width={width}
          maxRows={th - 1}
          theme={t}
        />
        <EventStream
          items={snap.events}
          filter={ui.filter}
          scroll={ui.scroll}
          height={body - th}
          width={width}
          paused={snap.paused}
          theme={t}
        />
      </>
    );
  }

  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Header
        title={p.title ?? 'raftctl'}
        clusterId={snap.clusterId}
        leader={snap.leader}
        term={snap.term}
        quorum={snap.quorum}
        commit={snap.commit}
        commitRate={snap.commitRate}
        alerts={snap.alerts}
        eventsTotal={snap.eventsTotal}
        lost={snap.lost}
        paused={snap.paused}
        replay={ui.replay}
        width={width}
        theme={t}
      />
      <Box flexDirection="column" height={body} overflow="hidden">
        {main}
      </Box>
      {ui.prompt !== undefined || ui.confirm !== undefined ? (
        <Prompt prompt={ui.prompt} confirm={ui.confirm} width={width} theme={t} />
      ) : (
        <StatusLine status={ui.status} width={width} theme={t} />
      )}
      <Footer hints={footerHints(p.keymap, p.mode)} width={width} theme={t} />
    </Box>
  );
}
