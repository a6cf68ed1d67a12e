import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { NO_FILTER, parseFilter } from '../../src/ui/commandline.js';
import { ClusterStore, type NodeRow, type StreamItem } from '../../src/ui/store.js';
import { theme } from '../../src/ui/theme.js';
import { EventStream } from '../../src/ui/views/EventStream.js';
import { Header } from '../../src/ui/views/Header.js';
import { COLUMNS, columnsFor, NodeTable } from '../../src/ui/views/NodeTable.js';
import { NodeView } from '../../src/ui/views/NodeView.js';
import { Prompt } from '../../src/ui/views/Prompt.js';
import { StatusLine } from '../../src/ui/views/StatusLine.js';
import { entry, hello, message, ready, threeNodes } from './fixtures.js';
import { dashboardTree, makeController, plain, renderSized, tick } from './render.js';

const mono = theme('mono');
const dark = theme('dark');

/** A published snapshot of a healthy three-node cluster (n3 behind), with some events. */
function clusterSnapshot() {
  const store = new ClusterStore({ publishIntervalMs: 0 });
  for (const id of [1, 2, 3])
    store.ingest({ type: 'hello', address: `127.0.0.1:${7000 + id}`, hello: hello(id) });
  for (const s of threeNodes()) store.ingest({ type: 'state', state: s });
  store.ingest({ type: 'event', event: message(1, 2, 'MsgApp') });
  store.ingest({ type: 'event', event: message(2, 1, 'MsgAppResp') });
  store.ingest({ type: 'event', event: ready(1, { entries: [entry(9), entry(10)], committed: [entry(9)] }) });
  store.flush();
  return { store, snap: store.getSnapshot() };
}

function item(n: number, node: number, type: string, text: string): StreamItem {
  return {
    n,
    at: 1_700_000_000_000 + n,
    node,
    kind: type.startsWith('Msg') ? 'message' : 'election',
    type,
    text,
  };
}

describe('Header', () => {
  it('shows leader, term, quorum, commit rate and alerts', () => {
    const { snap } = clusterSnapshot();
    const { lastFrame } = render(
      <Header
        title="raftctl"
        clusterId="test"
        leader={snap.leader}
        term={snap.term}
        quorum={snap.quorum}
        commit={snap.commit}
        commitRate={12.5}
        alerts={[{ at: 1, level: 'error', text: 'two leaders in term 5', invariant: true }]}
        eventsTotal={42}
        lost={0}
        paused={false}
        replay={undefined}
        width={100}
        theme={dark}
      />,
    );
    const f = plain(lastFrame()!);
    expect(f).toContain('leader n1');
    expect(f).toContain('term 2');
    expect(f).toContain('quorum ok 3/3');
    expect(f).toContain('commit 10 (13/s)');
    expect(f).toContain('1 alert (1 invariant): two leaders in term 5');
    expect(f).toContain('live');
  });

  it('says when there is no leader, no quorum, and when paused', () => {
    const { lastFrame } = render(
      <Header
        title="raftctl"
        clusterId={undefined}
        leader={undefined}
        term={3}
        quorum={{ voters: 3, reachable: 1, needed: 2, ok: false }}
        commit={0}
        commitRate={0}
        alerts={[]}
        eventsTotal={0}
        lost={5}
        paused
        replay={undefined}
        width={80}
        theme={mono}
      />,
    );
    const f = lastFrame()!;
    expect(f).toContain('no leader');
    expect(f).toContain('quorum LOST 1/3');
    expect(f).toContain('PAUSED');
    expect(f).toContain('5 events dropped');
  });
});

describe('NodeTable', () => {
  it('shows every node with role, term, indexes, lag and the leader view of followers', () => {
    const { snap } = clusterSnapshot();
    const { lastFrame } = render(
      <NodeTable
        nodes={snap.nodes}
        selected={2}
        leader={1}
        now={snap.now}
        highlightMs={0}
        width={100}
        maxRows={10}
        theme={mono}
      />,
    );
    const lines = lastFrame()!.split('\n');
    expect(lines[0]).toMatch(/ID\s+ROLE\s+NET\s+TERM/);
    expect(lines[1]).toMatch(/n1\s+leader\s+up\s+2/);
    expect(lines[2]).toMatch(/^▸ n2\s+follower/);
    expect(lines[2]).toContain('Repl');
    expect(lines[3]).toMatch(/n3\s+follower.*\b2\b.*Probe/); // lag 2, probing
    expect(lines[3]).toContain('P');
  });

  it('drops low-priority columns to fit 80 columns and never exceeds the width', () => {
    const { snap } = clusterSnapshot();
    for (const width of [40, 80, 100, 160]) {
      const { lastFrame } = render(
        <NodeTable
          nodes={snap.nodes}
          selected={1}
          leader={1}
          now={snap.now}
          highlightMs={0}
          width={width}
          maxRows={10}
          theme={mono}
        />,
      );
      for (const line of lastFrame()!.split('\n')) expect(line.length).toBeLessThanOrEqual(width);
    }
    expect(columnsFor(80).map((c) => c.key)).toEqual(
      expect.arrayContaining(['id', 'role', 'net', 'term', 'commit', 'lag']),
    );
    expect(columnsFor(200)).toHaveLength(COLUMNS.length);
  });

  it('keeps the selected node visible when rows are short', () => {
    const { snap } = clusterSnapshot();
    const { lastFrame } = render(
      <NodeTable
        nodes={snap.nodes}
        selected={3}
        leader={1}
        now={snap.now}
        highlightMs={0}
        width={100}
        maxRows={1}
        theme={mono}
      />,
    );
    expect(lastFrame()).toContain('▸ n3');
    expect(lastFrame()).not.toMatch(/n1\s+leader/);
  });

  it('marks down and isolated nodes', () => {
    const { snap } = clusterSnapshot();
    const rows: NodeRow[] = snap.nodes.map((n) =>
      n.id === 2 ? { ...n, link: 'down' } : n.id === 3 ? { ...n, isolated: true } : n,
    );
    const f = render(
      <NodeTable
        nodes={rows}
        selected={1}
        leader={1}
        now={0}
        highlightMs={0}
        width={100}
        maxRows={10}
        theme={mono}
      />,
    ).lastFrame()!;
    expect(f).toMatch(/n2\s+follower\s+down/);
    expect(f).toMatch(/n3\s+follower\s+iso/);
  });
});

describe('EventStream', () => {
  const items = [
    item(1, 1, 'MsgApp', '1->2 MsgApp Term:2 Log:2/14 Commit:13 Entries:[2/15 EntryNormal "x"]'),
    item(2, 2, 'MsgAppResp', '2->1 MsgAppResp Term:2 Log:0/15'),
    item(3, 3, 'MsgHeartbeat', '3->1 MsgHeartbeat Term:2'),
    item(4, 2, 'election', 'n2 became candidate at term 3'),
  ];
  type StreamProps = Parameters<typeof EventStream>[0];
  /** The stream's frame: these items, unfiltered, live, 100×10, unless overridden. */
  const frameOf = (props: Partial<StreamProps> = {}): string =>
    render(
      <EventStream
        items={items}
        filter={NO_FILTER}
        scroll={0}
        height={10}
        width={100}
        paused={false}
        theme={mono}
        {...props}
      />,
    ).lastFrame()!;

  it('shows each event as its describe line, newest last', () => {
    const lines = frameOf().split('\n');
    expect(lines[0]).toContain('Events [all] 4 kept · live');
    expect(lines[1]).toContain('n1 1->2 MsgApp Term:2 Log:2/14 Commit:13 Entries:[2/15 EntryNormal "x"]');
    expect(lines[4]).toContain('n2 n2 became candidate at term 3');
  });

  it('filters by node and by message type, and excludes types', () => {
    const byNode = frameOf({ filter: parseFilter('n2') });
    expect(byNode).toContain('MsgAppResp');
    expect(byNode).not.toContain('MsgHeartbeat');
    const byType = frameOf({ filter: parseFilter('MsgApp') });
    expect(byType).toContain('1->2 MsgApp');
    expect(byType).not.toContain('MsgAppResp');
    const without = frameOf({ filter: parseFilter('!MsgHeartbeat') });
    expect(without.split('\n').slice(1).join('\n')).not.toContain('MsgHeartbeat');
    expect(without).toContain('[!MsgHeartbeat] 3 kept');
  });

  it('scrolls back and clamps at the oldest event', () => {
    const many = Array.from({ length: 50 }, (_, i) => item(i + 1, 1, 'MsgApp', `line ${i + 1}`));
    const back = frameOf({ items: many, scroll: 10, height: 6, width: 80, paused: true });
    expect(back).toContain('↑ 10 back');
    expect(back).toContain('line 40');
    expect(back).not.toContain('line 41');
    const top = frameOf({ items: many, scroll: 1e9, height: 6, width: 80, paused: true });
    expect(top).toContain('line 1');
    expect(top).toContain('↑ 45 back');
  });

  it('truncates long lines to the width', () => {
    const f = frameOf({ items: [item(1, 1, 'MsgApp', 'x'.repeat(500))], height: 3, width: 60 });
    for (const l of f.split('\n')) expect(l.length).toBeLessThanOrEqual(60);
    expect(f).toContain('…');
  });
});

describe('NodeView', () => {
  it("shows the node's HardState, the leader's progress, its log tail with marks and its events", () => {
    const { snap } = clusterSnapshot();
    const n1 = snap.nodes[0]!;
    const f = render(
      <NodeView node={n1} leader={n1} height={30} width={100} paused={false} theme={mono} />,
    ).lastFrame()!;
    expect(f).toContain('n1');
    expect(f).toContain('leader');
    expect(f).toContain('HardState term 2 vote n1 commit 10');
    expect(f).toContain('Progress (as n1 sees it)');
    expect(f).toMatch(/n3\s+8\s+9 Probe/);
    expect(f).toMatch(/✓● +9 t2 Normal "x"/);
    expect(f).toMatch(/✓● +10 t2 Normal "x"/);
    expect(f).toContain('n1 events');
    expect(f).toContain('1->2 MsgApp');
  });

  it("shows a follower with the leader's progress table and stays within its height", () => {
    const { snap } = clusterSnapshot();
    const f = render(
      <NodeView
        node={snap.nodes[2]!}
        leader={snap.nodes[0]}
        height={12}
        width={80}
        paused={false}
        theme={mono}
      />,
    ).lastFrame()!;
    expect(f).toContain('Progress (as n1 sees it)');
    expect(f.split('\n').length).toBeLessThanOrEqual(12);
    for (const l of f.split('\n')) expect(l.length).toBeLessThanOrEqual(80);
  });
});

describe('StatusLine and Prompt', () => {
  it('shows the last result', () => {
    const f = render(
      <StatusLine status={{ text: 'campaign → n3: ok (term 5)', level: 'ok' }} width={80} theme={mono} />,
    ).lastFrame();
    expect(f).toBe('campaign → n3: ok (term 5)');
  });

  it('shows a prompt with its text and a confirmation question', () => {
    expect(
      render(
        <Prompt prompt={{ kind: 'propose', text: 'hello' }} confirm={undefined} width={80} theme={mono} />,
      ).lastFrame(),
    ).toContain('propose> hello');
    expect(
      render(
        <Prompt prompt={{ kind: 'command', text: 'put a 1' }} confirm={undefined} width={80} theme={mono} />,
      ).lastFrame(),
    ).toContain(':put a 1');
    expect(
      render(
        <Prompt
          prompt={undefined}
          confirm={{ question: 'Kill n3 with SIGKILL? (y/N)' }}
          width={80}
          theme={mono}
        />,
      ).lastFrame(),
    ).toContain('Kill n3 with SIGKILL? (y/N)');
  });

  it('shows the end of a long input', () => {
    const f = render(
      <Prompt
        prompt={{ kind: 'filter', text: `${'a'.repeat(100)}END` }}
        confirm={undefined}
        width={40}
        theme={mono}
      />,
    ).lastFrame()!;
    expect(f).toContain('END');
    expect(f.length).toBeLessThanOrEqual(40);
  });
});

describe('Dashboard layout', () => {
  for (const [cols, rows] of [
    [80, 24],
    [100, 30],
    [200, 60],
  ] as const) {
    it(`fits ${cols}×${rows} in rows−1 lines, no line wider than the terminal`, async () => {
      const { store } = clusterSnapshot();
      for (let i = 0; i < 200; i++) store.ingest({ type: 'event', event: message(1, 2) });
      store.flush();
      const controller = makeController(store);
      const r = renderSized(dashboardTree(store, controller), cols, rows);
      await tick(50);
      const lines = plain(r.lastFrame()).split('\n');
      expect(lines.length).toBe(rows - 1);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(cols);
      expect(lines[0]).toContain('leader n1');
      expect(lines.some((l) => /n3 .*follower/.test(l))).toBe(true);
      expect(lines[lines.length - 1]).toContain('? help');
      r.unmount();
    });
  }

  it('follows a resize', async () => {
    const { store } = clusterSnapshot();
    const r = renderSized(dashboardTree(store, makeController(store)), 100, 30);
    await tick(30);
    r.stdout.columns = 80;
    r.stdout.rows = 24;
    r.stdout.emit('resize');
    await tick(60);
    const lines = plain(r.lastFrame()).split('\n');
    expect(lines.length).toBe(23);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    r.unmount();
  });

  it('opens the node view with Enter, help with ?, and goes back with Esc', async () => {
    const { store } = clusterSnapshot();
    const r = renderSized(dashboardTree(store, makeController(store)), 100, 30);
    await tick(30);
    r.stdin.write('j');
    await tick(30);
    expect(plain(r.lastFrame())).toMatch(/▸ n2/);
    r.stdin.write('\r');
    await tick(30);
    expect(plain(r.lastFrame())).toContain('HardState term 2');
    r.stdin.write('?');
    await tick(30);
    expect(plain(r.lastFrame())).toContain('Keys (! asks for confirmation)');
    r.stdin.write('\x1b');
    await tick(30);
    expect(plain(r.lastFrame())).toContain('HardState term 2');
    r.stdin.write('\x1b');
    await tick(30);
    expect(plain(r.lastFrame())).toContain('Events [all]');
    r.unmount();
  });
});

describe('Header on a narrow terminal', () => {
  it('drops optional parts instead of squeezing words', () => {
    const f = render(
      <Header
        title="raftctl replay"
        clusterId="default"
        leader={{ id: 2, term: 4 }}
        term={4}
        quorum={{ voters: 3, reachable: 3, needed: 2, ok: true }}
        commit={123456}
        commitRate={1.5}
        alerts={[]}
        eventsTotal={1}
        lost={0}
        paused={false}
        replay={{ speed: 2, paused: true, position: 10, total: 1645, elapsedMs: 1700, done: false }}
        width={80}
        theme={theme('mono')}
      />,
    ).lastFrame()!;
    const first = f.split('\n')[0]!;
    expect(first.length).toBeLessThanOrEqual(80);
    expect(first).toContain('leader n2 term 4 │ quorum ok 3/3 │ commit 123456');
    expect(first).toContain('replay PAUSED ×2 1.7s 10/1645');
  });
});
