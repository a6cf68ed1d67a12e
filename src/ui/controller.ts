// The console's UI state (view, selection, prompt, status line, filter, scroll) and the
// actions keys trigger. It lives outside React, like the cluster store: Ink's input handler
// only calls dispatch(), and dispatch always works on the current state, never on a render's
// possibly stale copy. Side effects (commands to nodes, kill/restart) run here too.

import { ControlError } from '../client/client.js';
import type { CommandCall } from '../protocol/control.js';
import type { ClusterControl } from './cluster-control.js';
import {
  type EventFilter,
  NO_FILTER,
  type ParsedCommand,
  parseCommandLine,
  parseFilter,
  type Target,
} from './commandline.js';
import type { CommandBackend } from './connections.js';
import { type ConsoleCommand, indexKeymap, type KeyBinding } from './keymap.js';
import type { ClusterStore } from './store.js';

export type ViewName = 'dashboard' | 'node' | 'help';
export type PromptKind = 'propose' | 'filter' | 'command';
export type StatusLevel = 'info' | 'pending' | 'ok' | 'error';

export interface ReplayInfo {
  speed: number;
  paused: boolean;
  position: number;
  total: number;
  /** Recording time shown, ms since the recording started. */
  elapsedMs: number;
  done: boolean;
}

/** What the replay player offers the keys. */
export interface ReplayControl {
  togglePause(): void;
  faster(): void;
  slower(): void;
  step(): void;
}

export interface UiState {
  view: ViewName;
  /** The view help returns to. */
  under: Exclude<ViewName, 'help'>;
  selected: number | undefined;
  prompt: { kind: PromptKind; text: string } | undefined;
  confirm: { command: Confirmed; node: number; question: string } | undefined;
  status: { text: string; level: StatusLevel } | undefined;
  filter: EventFilter;
  /** Event lines back from the newest; 0 = following live. */
  scroll: number;
  replay: ReplayInfo | undefined;
}

export type UiAction =
  | { type: 'key'; name: string; input: string }
  | { type: 'command'; command: ConsoleCommand; key?: string }
  | { type: 'replay-info'; info: ReplayInfo };

export interface ControllerDeps {
  store: ClusterStore;
  keymap: readonly KeyBinding[];
  backend?: CommandBackend;
  cluster?: ClusterControl;
  replay?: ReplayControl;
  onQuit(): void;
  /** Lines a PgUp/PgDn moves; the app sets it from the terminal height. */
  pageSize?: () => number;
}

const UNMANAGED = 'only for clusters started by `raftctl up`';

/** Commands that ask "y/N" first, and what they ask. */
export type Confirmed = 'kill' | 'stop' | 'remove-node';
const CONFIRM_QUESTION: Record<Confirmed, (node: number) => string> = {
  kill: (n) => `Kill n${n} with SIGKILL? (y/N)`,
  stop: (n) => `Stop n${n} cleanly (SIGTERM; a leader hands leadership on first)? (y/N)`,
  'remove-node': (n) => `Remove n${n} from the cluster? Its data stays on disk. (y/N)`,
};

/** `{term: 5, index: 42}` → `term 5, index 42`: the parts of a result worth a status line. */
export function describeResult(value: unknown): string {
  if (value === null || value === undefined) return 'ok';
  if (Array.isArray(value)) return `ok (${value.length} items)`;
  if (typeof value !== 'object') return `ok (${String(value)})`;
  const v = value as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof v.key === 'string' && 'found' in v) {
    parts.push(v.found === true ? `${v.key} = ${JSON.stringify(v.value)}` : `${v.key} not found`);
  }
  if (v.via === 'transfer' && typeof v.leader === 'number') {
    // campaign on a follower of a live leader: the node asked that leader to hand over.
    return `ok (asked n${v.leader} to hand over: MsgTransferLeader → MsgTimeoutNow → forced election)`;
  }
  for (const k of ['index', 'revision', 'term', 'role', 'leader', 'applied', 'to'] as const) {
    const x = v[k];
    if (typeof x === 'number' || typeof x === 'string') parts.push(`${k} ${x}`);
  }
  if (typeof v.confState === 'object' && v.confState !== null) {
    const cs = v.confState as { voters?: number[]; learners?: number[] };
    parts.push(
      `voters ${cs.voters?.join(',') ?? '-'}${cs.learners?.length ? ` learners ${cs.learners.join(',')}` : ''}`,
    );
  }
  return parts.length > 0 ? `ok (${parts.join(', ')})` : 'ok';
}

export function describeError(err: unknown): string {
  if (err instanceof ControlError) {
    const hint = err.code === 'not_leader' && err.leader !== undefined ? ` (leader is n${err.leader})` : '';
    return `error ${err.code}: ${err.message}${hint}`;
  }
  return `error: ${err instanceof Error ? err.message : String(err)}`;
}

export class ConsoleController {
  private state: UiState = {
    view: 'dashboard',
    under: 'dashboard',
    selected: undefined,
    prompt: undefined,
    confirm: undefined,
    status: undefined,
    filter: NO_FILTER,
    scroll: 0,
    replay: undefined,
  };
  private readonly listeners = new Set<() => void>();
  private readonly keys: Map<string, KeyBinding>;

  constructor(private readonly deps: ControllerDeps) {
    this.keys = indexKeymap(deps.keymap);
  }

  readonly subscribe = (l: () => void): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  readonly getSnapshot = (): UiState => this.state;

  private set(patch: Partial<UiState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of [...this.listeners]) l();
  }

  private status(text: string, level: StatusLevel): void {
    this.set({ status: { text, level } });
  }

  /** The selected node: the chosen one while it exists, else the first. */
  selectedId(): number | undefined {
    const ids = this.deps.store.nodeIds();
    const s = this.state.selected;
    return s !== undefined && ids.includes(s) ? s : ids[0];
  }

  dispatch(action: UiAction): void {
    switch (action.type) {
      case 'replay-info':
        this.set({ replay: action.info });
        return;
      case 'command':
        this.run(action.command, action.key ?? '');
        return;
      case 'key':
        this.onKey(action.name, action.input);
        return;
    }
  }

  private onKey(name: string, input: string): void {
    const { confirm, prompt } = this.state;
    if (confirm !== undefined) {
      this.set({ confirm: undefined });
      if (name === 'y' || name === 'Y') void this.confirmed(confirm.command, confirm.node);
      else this.status(`${confirm.command} cancelled`, 'info');
      return;
    }
    if (prompt !== undefined) {
      this.onPromptKey(prompt, name, input);
      return;
    }
    const b = this.keys.get(name);
    if (b === undefined) return;
    if (this.state.view === 'help' && b.command !== 'help' && b.command !== 'back' && b.command !== 'quit')
      return;
    this.run(b.command, name);
  }

  private onPromptKey(prompt: NonNullable<UiState['prompt']>, name: string, input: string): void {
    if (name === 'escape') {
      this.set({ prompt: undefined });
      return;
    }
    if (name === 'return') {
      this.set({ prompt: undefined });
      this.submit(prompt.kind, prompt.text);
      return;
    }
    if (name === 'backspace') {
      this.set({ prompt: { ...prompt, text: prompt.text.slice(0, -1) } });
      return;
    }
    if (name === 'ctrl+u') {
      this.set({ prompt: { ...prompt, text: '' } });
      return;
    }
    if (name === 'ctrl+c') {
      this.run('quit', name);
      return;
    }
    // Printable input only (a paste arrives as one string); other control keys are ignored.
    if (name.startsWith('ctrl+')) return;
    const printable = input.replace(/[\u0000-\u001f\u007f]/g, '');
    if (printable !== '') {
      this.set({ prompt: { ...prompt, text: prompt.text + printable } });
    }
  }

  private submit(kind: PromptKind, text: string): void {
    switch (kind) {
      case 'filter': {
        const filter = parseFilter(text);
        this.set({ filter, scroll: 0 });
        this.status(filter.text === '' ? 'filter cleared' : `filter: ${filter.text}`, 'info');
        return;
      }
      case 'propose':
        if (text === '') {
          this.status('propose: nothing to propose', 'info');
          return;
        }
        void this.send('propose', { target: { kind: 'leader' }, call: ['propose', { data: text }] });
        return;
      case 'command': {
        if (text.trim() === '') return;
        const parsed = parseCommandLine(text);
        if (!parsed.ok) {
          this.status(parsed.error, 'error');
          return;
        }
        void this.send(text.trim().split(/\s+/)[0]!, parsed.command);
        return;
      }
    }
  }

  private move(delta: number): void {
    const ids = this.deps.store.nodeIds();
    if (ids.length === 0) return;
    const cur = this.selectedId();
    const i = cur === undefined ? 0 : ids.indexOf(cur);
    const next = Math.min(ids.length - 1, Math.max(0, i + delta));
    this.set({ selected: ids[next] });
  }

  private page(): number {
    return Math.max(1, this.deps.pageSize?.() ?? 10);
  }

  private run(command: ConsoleCommand, key: string): void {
    const b = this.deps.keymap.find((x) => x.command === command);
    if (b?.live && this.deps.backend === undefined) {
      this.status(`${command}: not available while replaying a recording`, 'error');
      return;
    }
    if (b?.replayOnly && this.deps.replay === undefined) {
      this.status(`${command}: only while replaying a recording`, 'error');
      return;
    }
    const store = this.deps.store;
    const sel = this.selectedId();
    switch (command) {
      case 'select-up':
        this.move(-1);
        return;
      case 'select-down':
        this.move(1);
        return;
      case 'select-index': {
        const ids = store.nodeIds();
        const id = ids[Number(key) - 1];
        if (id !== undefined) this.set({ selected: id });
        return;
      }
      case 'open-node':
        if (sel !== undefined) this.set({ view: 'node', under: 'node', selected: sel });
        return;
      case 'back':
        if (this.state.view === 'help') this.set({ view: this.state.under });
        else if (this.state.view === 'node') this.set({ view: 'dashboard', under: 'dashboard' });
        else this.set({ status: undefined });
        return;
      case 'help':
        if (this.state.view === 'help') this.set({ view: this.state.under });
        else this.set({ view: 'help' });
        return;
      case 'quit':
        this.deps.onQuit();
        return;
      case 'pause':
        if (this.deps.replay !== undefined) {
          this.deps.replay.togglePause();
          return;
        }
        store.setPaused(!store.isPaused);
        if (!store.isPaused) this.set({ scroll: 0 });
        this.status(store.isPaused ? 'paused (events are still collected; Space resumes)' : 'live', 'info');
        return;
      case 'scroll-up':
        if (this.deps.replay === undefined) store.setPaused(true);
        this.set({ scroll: this.state.scroll + this.page() });
        return;
      case 'scroll-down':
        this.set({ scroll: Math.max(0, this.state.scroll - this.page()) });
        return;
      case 'scroll-top':
        if (this.deps.replay === undefined) store.setPaused(true);
        this.set({ scroll: Number.MAX_SAFE_INTEGER });
        return;
      case 'scroll-live':
        this.set({ scroll: 0 });
        if (this.deps.replay === undefined) store.setPaused(false);
        return;
      case 'filter':
        this.set({ prompt: { kind: 'filter', text: this.state.filter.text } });
        return;
      case 'command-line':
        this.set({ prompt: { kind: 'command', text: '' } });
        return;
      case 'propose':
        this.set({ prompt: { kind: 'propose', text: '' } });
        return;
      case 'replay-faster':
        this.deps.replay?.faster();
        return;
      case 'replay-slower':
        this.deps.replay?.slower();
        return;
      case 'replay-step':
        this.deps.replay?.step();
        return;
      default:
        break;
    }
    // Everything below acts on the selected node.
    if (sel === undefined) {
      this.status(`${command}: no node selected`, 'error');
      return;
    }
    switch (command) {
      case 'campaign':
      case 'forget-leader':
      case 'snapshot':
        void this.send(command, { target: { kind: 'node', id: sel }, call: [command, {}] });
        return;
      case 'transfer': {
        const leader = store.currentLeader();
        if (leader === sel) {
          this.status(`transfer → n${sel}: already the leader`, 'info');
          return;
        }
        void this.send(
          'transfer',
          { target: { kind: 'leader' }, call: ['transfer', { to: sel }] },
          `n${sel}`,
        );
        return;
      }
      case 'isolate': {
        const peers = store.nodeIds().filter((id) => id !== sel);
        if (peers.length === 0) {
          this.status('isolate: there are no peers to cut off', 'error');
          return;
        }
        void this.send('isolate', {
          target: { kind: 'node', id: sel },
          call: ['fault', { kind: 'isolate', peers }],
        });
        return;
      }
      case 'heal-all':
        void this.send('heal', { target: { kind: 'all' }, call: ['fault', { kind: 'heal' }] });
        return;
      case 'kill':
      case 'stop':
      case 'remove-node': {
        if (command !== 'remove-node' && !this.managed(sel)) return;
        this.set({ confirm: { command, node: sel, question: CONFIRM_QUESTION[command](sel) } });
        return;
      }
      case 'restart':
        if (!this.managed(sel)) return;
        void this.manage('restart', sel, () => this.deps.cluster!.restart(sel));
        return;
      case 'add-node': {
        const cluster = this.deps.cluster;
        if (cluster === undefined) {
          this.status(`add: ${UNMANAGED}`, 'error');
          return;
        }
        this.status('add → new node: …', 'pending');
        cluster.addNode().then(
          (n) => this.status(`add → n${n.id} at ${n.address}: ok`, 'ok'),
          (err: unknown) => this.status(`add → new node: ${describeError(err)}`, 'error'),
        );
        return;
      }
      case 'promote': {
        const row = store.getSnapshot().nodes.find((n) => n.id === sel);
        if (row !== undefined && !row.learner) {
          this.status(`promote → n${sel}: not a learner`, 'error');
          return;
        }
        void this.send(
          'promote',
          { target: { kind: 'leader' }, call: ['member-promote', { id: sel }] },
          `n${sel}`,
        );
        return;
      }
      default:
        return;
    }
  }

  private managed(id: number): boolean {
    const c = this.deps.cluster;
    if (c === undefined || !c.isManaged(id)) {
      this.status(
        `n${id}: ${c === undefined ? UNMANAGED : `not started by this console's cluster (${c.name})`}`,
        'error',
      );
      return false;
    }
    return true;
  }

  private async manage(label: string, id: number, act: () => Promise<void>): Promise<void> {
    this.status(`${label} → n${id}: …`, 'pending');
    try {
      await act();
      this.status(`${label} → n${id}: ok`, 'ok');
    } catch (err) {
      this.status(`${label} → n${id}: ${describeError(err)}`, 'error');
    }
  }

  private async confirmed(command: Confirmed, id: number): Promise<void> {
    if (command !== 'remove-node') {
      await this.manage(command, id, () => this.deps.cluster![command](id));
      return;
    }
    await this.send('remove', { target: { kind: 'leader' }, call: ['member-remove', { id }] }, `n${id}`);
  }

  private resolve(target: Target): number[] | string {
    const store = this.deps.store;
    switch (target.kind) {
      case 'node':
        return [target.id];
      case 'selected': {
        const s = this.selectedId();
        return s === undefined ? 'no node selected' : [s];
      }
      case 'leader': {
        const l = store.currentLeader();
        if (l !== undefined) return [l];
        // Without a known leader, any node answers (it forwards or says no_leader).
        const any = this.deps.backend?.connectedIds()[0];
        return any === undefined ? 'no node is connected' : [any];
      }
      case 'all': {
        const ids = this.deps.backend?.connectedIds() ?? [];
        return ids.length === 0 ? 'no node is connected' : ids.sort((a, b) => a - b);
      }
    }
  }

  /** Sends a command and reports `label → nX: ok (…)` or the error in the status line. */
  private async send(label: string, cmd: ParsedCommand, about?: string): Promise<void> {
    const backend = this.deps.backend;
    if (backend === undefined) {
      this.status(`${label}: not available while replaying a recording`, 'error');
      return;
    }
    const targets = this.resolve(cmd.target);
    if (typeof targets === 'string') {
      this.status(`${label}: ${targets}`, 'error');
      return;
    }
    const where = targets.map((t) => `n${t}`).join(',');
    const head = `${label} → ${about ?? where}${about !== undefined ? ` via ${where}` : ''}`;
    this.status(`${head}: …`, 'pending');
    const results = await Promise.allSettled(targets.map((t) => backend.command(t, cmd.call as CommandCall)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      this.status(`${head}: ${describeError(failed.reason)}`, 'error');
      return;
    }
    const first = results[0] as PromiseFulfilledResult<unknown>;
    this.status(`${head}: ${targets.length === 1 ? describeResult(first.value) : 'ok'}`, 'ok');
  }
}
