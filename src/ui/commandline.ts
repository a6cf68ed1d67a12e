// The console's `:` command line and `/` filter: parsing only. Commands are the scripting
// verbs (put/get/del/campaign/transfer/member/fault/snapshot/status); each parses into a
// protocol CommandCall plus where to send it, and is then sent through the client, which
// validates the arguments once more.

import type { CommandCall } from '../protocol/control.js';
import type { StreamItem } from './store.js';

export type Target =
  | { kind: 'leader' }
  | { kind: 'selected' }
  | { kind: 'node'; id: number }
  | { kind: 'all' };

export interface ParsedCommand {
  target: Target;
  call: CommandCall;
}

export type ParseOutcome = { ok: true; command: ParsedCommand } | { ok: false; error: string };

export const COMMAND_LINE_HELP =
  'put K V | get K [-s] | del K | campaign [ID] | transfer ID | forget-leader [ID] | member list|add ID ADDR [--learner]|remove ID|promote ID | fault [ID] isolate|drop P|delay MS|heal [PEERS] | snapshot [ID] | status [ID]';

/** Splits on spaces, keeping "double quoted" runs (with \" escapes) together. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  }
  return out;
}

function nodeId(text: string | undefined, what: string): number | string {
  if (text === undefined) return `${what}: missing node id`;
  const s = text.replace(/^n/i, '');
  if (!/^\d+$/.test(s) || Number(s) < 1) return `${what}: '${text}' is not a node id`;
  return Number(s);
}

function peerList(tokens: string[]): number[] | string {
  const ids: number[] = [];
  for (const t of tokens.flatMap((x) => x.split(',')).filter((x) => x !== '')) {
    const id = nodeId(t, 'peers');
    if (typeof id === 'string') return id;
    ids.push(id);
  }
  return ids;
}

const ok = (target: Target, call: CommandCall): ParseOutcome => ({ ok: true, command: { target, call } });
const fail = (error: string): ParseOutcome => ({ ok: false, error });

function optionalNode(tok: string | undefined, verb: string): Target | string {
  if (tok === undefined) return { kind: 'selected' };
  const id = nodeId(tok, verb);
  return typeof id === 'string' ? id : { kind: 'node', id };
}

export function parseCommandLine(line: string): ParseOutcome {
  const [verb, ...rest] = tokenize(line.trim());
  switch (verb) {
    case undefined:
      return fail('empty command');
    case 'put': {
      if (rest.length < 2) return fail('usage: put KEY VALUE');
      return ok({ kind: 'leader' }, ['put', { key: rest[0]!, value: rest.slice(1).join(' ') }]);
    }
    case 'get': {
      const serializable = rest.includes('-s') || rest.includes('--serializable');
      const keys = rest.filter((t) => t !== '-s' && t !== '--serializable');
      if (keys.length !== 1) return fail('usage: get KEY [-s]');
      return ok(serializable ? { kind: 'selected' } : { kind: 'leader' }, [
        'get',
        serializable ? { key: keys[0]!, serializable: true } : { key: keys[0]! },
      ]);
    }
    case 'del':
    case 'delete':
      if (rest.length !== 1) return fail('usage: del KEY');
      return ok({ kind: 'leader' }, ['delete', { key: rest[0]! }]);
    case 'campaign':
    case 'forget-leader':
    case 'snapshot':
    case 'status': {
      const t = optionalNode(rest[0], verb);
      if (typeof t === 'string') return fail(t);
      return ok(t, [verb, {}]);
    }
    case 'transfer': {
      const to = nodeId(rest[0], 'transfer');
      if (typeof to === 'string') return fail(`${to} (usage: transfer ID)`);
      return ok({ kind: 'leader' }, ['transfer', { to }]);
    }
    case 'member':
      return parseMember(rest);
    case 'fault':
      return parseFault(rest);
    default:
      return fail(`unknown command '${verb}': ${COMMAND_LINE_HELP}`);
  }
}

function parseMember(rest: string[]): ParseOutcome {
  const [sub, ...args] = rest;
  switch (sub) {
    case 'list':
      return ok({ kind: 'leader' }, ['members', {}]);
    case 'add': {
      const learner = args.includes('--learner');
      const pos = args.filter((a) => a !== '--learner');
      const id = nodeId(pos[0], 'member add');
      if (typeof id === 'string' || pos[1] === undefined)
        return fail('usage: member add ID HOST:PORT [--learner]');
      return ok({ kind: 'leader' }, ['member-add', { id, address: pos[1], ...(learner ? { learner } : {}) }]);
    }
    case 'remove':
    case 'promote': {
      const id = nodeId(args[0], `member ${sub}`);
      if (typeof id === 'string') return fail(`usage: member ${sub} ID`);
      return ok({ kind: 'leader' }, [sub === 'remove' ? 'member-remove' : 'member-promote', { id }]);
    }
    default:
      return fail('usage: member list | add ID HOST:PORT [--learner] | remove ID | promote ID');
  }
}

function parseFault(rest: string[]): ParseOutcome {
  let args = rest;
  let target: Target = { kind: 'selected' };
  const first = args[0];
  if (first !== undefined && /^n?\d+$/i.test(first)) {
    target = { kind: 'node', id: Number(first.replace(/^n/i, '')) };
    args = args.slice(1);
  }
  const [kind, ...more] = args;
  const usage = 'usage: fault [ID] isolate PEERS | drop P [PEERS] | delay MS [PEERS] | heal [PEERS]';
  switch (kind) {
    case 'isolate': {
      const peers = peerList(more);
      if (typeof peers === 'string') return fail(peers);
      if (peers.length === 0)
        return fail('fault isolate: name the peers to cut off (e.g. fault 3 isolate 1,2)');
      return ok(target, ['fault', { kind: 'isolate', peers }]);
    }
    case 'drop':
    case 'delay': {
      const n = Number(more[0]);
      if (more[0] === undefined || !Number.isFinite(n)) return fail(usage);
      const peers = peerList(more.slice(1));
      if (typeof peers === 'string') return fail(peers);
      const p = peers.length > 0 ? { peers } : {};
      return ok(target, ['fault', kind === 'drop' ? { kind, probability: n, ...p } : { kind, ms: n, ...p }]);
    }
    case 'heal': {
      const peers = peerList(more);
      if (typeof peers === 'string') return fail(peers);
      // `fault heal` without a node heals everywhere, like X.
      const t: Target = target.kind === 'selected' ? { kind: 'all' } : target;
      return ok(t, ['fault', peers.length > 0 ? { kind: 'heal', peers } : { kind: 'heal' }]);
    }
    default:
      return fail(usage);
  }
}

// ---- `/` filter ---------------------------------------------------------------------------

export interface EventFilter {
  text: string;
  nodes: number[];
  include: string[];
  exclude: string[];
}

export const NO_FILTER: EventFilter = { text: '', nodes: [], include: [], exclude: [] };

/** `n2 3 MsgApp !MsgHeartbeat`: node ids (with or without n), types to show, `!types` to hide. */
export function parseFilter(text: string): EventFilter {
  const f: EventFilter = { text: text.trim(), nodes: [], include: [], exclude: [] };
  for (const tok of tokenize(text)) {
    if (/^n?\d+$/i.test(tok)) f.nodes.push(Number(tok.replace(/^n/i, '')));
    else if (tok.startsWith('!') && tok.length > 1) f.exclude.push(tok.slice(1).toLowerCase());
    else f.include.push(tok.toLowerCase());
  }
  return f;
}

export function matchesFilter(item: StreamItem, f: EventFilter): boolean {
  // Console notes and alerts always show: they are what the user needs to see.
  if (item.node === 0) return true;
  if (f.nodes.length > 0 && !f.nodes.includes(item.node)) return false;
  const type = item.type.toLowerCase();
  const kind = item.kind.toLowerCase();
  if (f.include.length > 0 && !f.include.includes(type) && !f.include.includes(kind)) return false;
  if (f.exclude.includes(type) || f.exclude.includes(kind)) return false;
  return true;
}

export function isFilterEmpty(f: EventFilter): boolean {
  return f.nodes.length === 0 && f.include.length === 0 && f.exclude.length === 0;
}
