import { describe, expect, it, vi } from 'vitest';
import { ControlError } from '../../src/client/client.js';
import type { CommandCall } from '../../src/protocol/control.js';
import { parseCommandLine, parseFilter, tokenize } from '../../src/ui/commandline.js';
import type { CommandBackend } from '../../src/ui/connections.js';
import { ConsoleController, describeResult } from '../../src/ui/controller.js';
import { buildKeymap } from '../../src/ui/keymap.js';
import { ClusterStore } from '../../src/ui/store.js';
import { hello, nodeState, threeNodes } from './fixtures.js';

function setup(answer: (node: number, call: CommandCall) => unknown = () => ({ term: 5 })) {
  const store = new ClusterStore({ publishIntervalMs: 0 });
  for (const id of [1, 2, 3])
    store.ingest({ type: 'hello', address: `127.0.0.1:${7000 + id}`, hello: hello(id) });
  for (const s of threeNodes()) store.ingest({ type: 'state', state: s });
  store.flush();
  const sent: [number, CommandCall][] = [];
  const backend: CommandBackend = {
    command: async (node, call) => {
      sent.push([node, call]);
      const r = answer(node, call);
      if (r instanceof Error) throw r;
      return r;
    },
    connectedIds: () => [1, 2, 3],
    close: async () => {},
  };
  const quit = vi.fn();
  const cluster = {
    name: 'default',
    kill: vi.fn(async () => {}),
    stop: vi.fn(async () => {}),
    restart: vi.fn(async () => {}),
    addNode: vi.fn(async () => ({ id: 4, address: '127.0.0.1:7004' })),
    stopAll: vi.fn(async () => {}),
    isManaged: () => true,
  };
  const c = new ConsoleController({ store, keymap: buildKeymap(), backend, cluster, onQuit: quit });
  const press = (...keys: string[]) => {
    for (const k of keys) c.dispatch({ type: 'key', name: k, input: k.length === 1 ? k : '' });
  };
  const type = (text: string) => c.dispatch({ type: 'key', name: text, input: text });
  return { store, c, sent, press, type, quit, cluster };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('ConsoleController', () => {
  it('selects nodes with arrows, j/k and digits', () => {
    const { c, press } = setup();
    expect(c.selectedId()).toBe(1);
    press('j', 'down');
    expect(c.selectedId()).toBe(3);
    press('down');
    expect(c.selectedId()).toBe(3);
    press('k');
    expect(c.selectedId()).toBe(2);
    press('1');
    expect(c.selectedId()).toBe(1);
    press('9');
    expect(c.selectedId()).toBe(1);
  });

  it('c campaigns on the selected node and reports the result', async () => {
    const { c, press, sent } = setup();
    press('3', 'c');
    expect(c.getSnapshot().status).toEqual({ text: 'campaign → n3: …', level: 'pending' });
    await settle();
    expect(sent).toEqual([[3, ['campaign', {}]]]);
    expect(c.getSnapshot().status).toEqual({ text: 'campaign → n3: ok (term 5)', level: 'ok' });
  });

  it('t sends transfer to the leader, naming the selected node', async () => {
    const { c, press, sent } = setup(() => ({ to: 2, leader: 1, term: 2 }));
    press('2', 't');
    await settle();
    expect(sent).toEqual([[1, ['transfer', { to: 2 }]]]);
    expect(c.getSnapshot().status?.text).toBe('transfer → n2 via n1: ok (term 2, leader 1, to 2)');
  });

  it('shows errors in the status line', async () => {
    const { c, press } = setup(
      () => new ControlError('not_leader', 'node 2 is not the leader', { leader: 1 }),
    );
    press('2', 'f');
    await settle();
    expect(c.getSnapshot().status).toEqual({
      text: 'forget-leader → n2: error not_leader: node 2 is not the leader (leader is n1)',
      level: 'error',
    });
  });

  it('p opens a prompt and proposes the typed text on Enter', async () => {
    const { c, press, type, sent } = setup(() => ({ revision: 7, term: 2 }));
    press('p');
    expect(c.getSnapshot().prompt).toEqual({ kind: 'propose', text: '' });
    type('hello');
    press('space');
    c.dispatch({ type: 'key', name: 'space', input: ' ' });
    type('worlds');
    press('backspace');
    // While the prompt is open, command keys are text: 'q' does not quit.
    type('q');
    expect(c.getSnapshot().prompt?.text).toBe('hello worldq');
    press('return');
    await settle();
    expect(sent).toEqual([[1, ['propose', { data: 'hello worldq' }]]]);
    expect(c.getSnapshot().status?.text).toBe('propose → n1: ok (revision 7, term 2)');
  });

  it('Esc cancels a prompt', () => {
    const { c, press } = setup();
    press(':');
    press('escape');
    expect(c.getSnapshot().prompt).toBeUndefined();
  });

  it('x isolates the selected node from every peer, X heals every node', async () => {
    const { press, sent, c } = setup(() => ({ faults: [] }));
    press('2', 'x');
    await settle();
    expect(sent).toEqual([[2, ['fault', { kind: 'isolate', peers: [1, 3] }]]]);
    press('X');
    await settle();
    expect(sent.slice(1)).toEqual([
      [1, ['fault', { kind: 'heal' }]],
      [2, ['fault', { kind: 'heal' }]],
      [3, ['fault', { kind: 'heal' }]],
    ]);
    expect(c.getSnapshot().status?.text).toBe('heal → n1,n2,n3: ok');
  });

  it.each([
    { key: 'K', action: 'kill', other: 'stop', question: 'Kill n3 with SIGKILL? (y/N)' },
    {
      key: 'S',
      action: 'stop',
      other: 'kill',
      question: 'Stop n3 cleanly (SIGTERM; a leader hands leadership on first)? (y/N)',
    },
  ] as const)(
    '$key asks for confirmation and runs $action on the node only on y',
    async ({ key, action, other, question }) => {
      const { c, press, cluster } = setup();
      press('3', key);
      expect(c.getSnapshot().confirm?.question).toBe(question);
      press('n');
      expect(cluster[action]).not.toHaveBeenCalled();
      expect(c.getSnapshot().status?.text).toBe(`${action} cancelled`);
      press(key, 'y');
      await settle();
      expect(cluster[action]).toHaveBeenCalledWith(3);
      expect(cluster[other]).not.toHaveBeenCalled();
      expect(c.getSnapshot().status?.text).toBe(`${action} → n3: ok`);
    },
  );

  it('d removes the selected node via the leader after confirmation', async () => {
    const { press, sent } = setup(() => ({ confState: { voters: [1, 2], learners: [] } }));
    press('3', 'd', 'y');
    await settle();
    expect(sent).toEqual([[1, ['member-remove', { id: 3 }]]]);
  });

  it('r, a and K need a cluster started by up', () => {
    const store = new ClusterStore({ publishIntervalMs: 0 });
    store.ingest({ type: 'state', state: nodeState(1) });
    const backend: CommandBackend = {
      command: async () => null,
      connectedIds: () => [1],
      close: async () => {},
    };
    const c = new ConsoleController({ store, keymap: buildKeymap(), backend, onQuit: () => {} });
    for (const k of ['K', 'r', 'a']) {
      c.dispatch({ type: 'key', name: k, input: k });
      expect(c.getSnapshot().status?.text).toMatch(/only for clusters started by `raftctl up`/);
      expect(c.getSnapshot().confirm).toBeUndefined();
    }
  });

  it('l promotes only learners', async () => {
    const { c, press } = setup();
    press('2', 'l');
    expect(c.getSnapshot().status?.text).toBe('promote → n2: not a learner');
  });

  it(': runs a scripting command through the client', async () => {
    const { c, press, type, sent } = setup(() => ({ key: 'a', found: true, value: '1', revision: 3 }));
    press(':');
    type('get a');
    press('return');
    await settle();
    expect(sent).toEqual([[1, ['get', { key: 'a' }]]]);
    expect(c.getSnapshot().status?.text).toBe('get → n1: ok (a = "1", revision 3)');
    press(':');
    type('frobnicate');
    press('return');
    expect(c.getSnapshot().status?.level).toBe('error');
    expect(c.getSnapshot().status?.text).toMatch(/unknown command 'frobnicate'/);
  });

  it('Space pauses the store, PgUp scrolls back (pausing), End returns to live', () => {
    const { c, press, store } = setup();
    press('space');
    expect(store.isPaused).toBe(true);
    press('space');
    expect(store.isPaused).toBe(false);
    press('pageup');
    expect(store.isPaused).toBe(true);
    expect(c.getSnapshot().scroll).toBe(10);
    press('pagedown', 'pagedown');
    expect(c.getSnapshot().scroll).toBe(0);
    press('pageup', 'end');
    expect(c.getSnapshot().scroll).toBe(0);
    expect(store.isPaused).toBe(false);
  });

  it('/ sets the event filter', () => {
    const { c, press, type } = setup();
    press('/');
    type('n2 MsgApp');
    press('return');
    expect(c.getSnapshot().filter).toEqual(parseFilter('n2 MsgApp'));
  });

  it('q quits; replay keys and live commands say when they are unavailable', () => {
    const { c, press, quit } = setup();
    press('+');
    expect(c.getSnapshot().status?.text).toBe('replay-faster: only while replaying a recording');
    press('q');
    expect(quit).toHaveBeenCalled();
    const store = new ClusterStore();
    const replay = { togglePause: vi.fn(), faster: vi.fn(), slower: vi.fn(), step: vi.fn() };
    const r = new ConsoleController({ store, keymap: buildKeymap(), replay, onQuit: () => {} });
    r.dispatch({ type: 'key', name: 'c', input: 'c' });
    expect(r.getSnapshot().status?.text).toBe('campaign: not available while replaying a recording');
    for (const k of ['+', '-', '.', 'space']) r.dispatch({ type: 'key', name: k, input: k });
    expect(replay.faster).toHaveBeenCalled();
    expect(replay.slower).toHaveBeenCalled();
    expect(replay.step).toHaveBeenCalled();
    expect(replay.togglePause).toHaveBeenCalled();
    store.dispose();
  });
});

describe('command line', () => {
  it('tokenizes quoted values', () => {
    expect(tokenize('put k "hello world" x')).toEqual(['put', 'k', 'hello world', 'x']);
  });

  it('parses the scripting commands', () => {
    const p = (s: string) => {
      const r = parseCommandLine(s);
      if (!r.ok) throw new Error(r.error);
      return r.command;
    };
    expect(p('put k v w')).toEqual({ target: { kind: 'leader' }, call: ['put', { key: 'k', value: 'v w' }] });
    expect(p('get k -s')).toEqual({
      target: { kind: 'selected' },
      call: ['get', { key: 'k', serializable: true }],
    });
    expect(p('del k').call).toEqual(['delete', { key: 'k' }]);
    expect(p('campaign 2')).toEqual({ target: { kind: 'node', id: 2 }, call: ['campaign', {}] });
    expect(p('campaign').target).toEqual({ kind: 'selected' });
    expect(p('transfer n3').call).toEqual(['transfer', { to: 3 }]);
    expect(p('member add 4 127.0.0.1:7004 --learner').call).toEqual([
      'member-add',
      { id: 4, address: '127.0.0.1:7004', learner: true },
    ]);
    expect(p('member remove 4').call).toEqual(['member-remove', { id: 4 }]);
    expect(p('member promote 4').call).toEqual(['member-promote', { id: 4 }]);
    expect(p('fault 2 isolate 1,3')).toEqual({
      target: { kind: 'node', id: 2 },
      call: ['fault', { kind: 'isolate', peers: [1, 3] }],
    });
    expect(p('fault drop 0.5 1').call).toEqual(['fault', { kind: 'drop', probability: 0.5, peers: [1] }]);
    expect(p('fault 1 delay 200').call).toEqual(['fault', { kind: 'delay', ms: 200 }]);
    expect(p('fault heal')).toEqual({ target: { kind: 'all' }, call: ['fault', { kind: 'heal' }] });
    expect(p('snapshot 1').call).toEqual(['snapshot', {}]);
    expect(parseCommandLine('put k').ok).toBe(false);
    expect(parseCommandLine('transfer x').ok).toBe(false);
    expect(parseCommandLine('fault 2 isolate').ok).toBe(false);
  });

  it('describes results briefly', () => {
    expect(describeResult(null)).toBe('ok');
    expect(describeResult({ term: 5, role: 'candidate' })).toBe('ok (term 5, role candidate)');
    expect(describeResult({ key: 'k', found: false, revision: 2 })).toBe('ok (k not found, revision 2)');
  });
});
