// The one textual form of Raft values, shared by the conformance runner, logs and the
// console. It reproduces etcd's DescribeMessage/DescribeEntry/DescribeReady output byte for
// byte, because the conformance scripts compare against exactly that text.

import { confChangeAsV2, confChangesToString, decodeConfChangeEntry } from './confchange-codec.js';
import type { Ready } from './ready.js';
import {
  type ConfState,
  type Entry,
  type HardState,
  isEmptyHardState,
  isEmptySnapshot,
  LOCAL_APPEND_THREAD,
  LOCAL_APPLY_THREAD,
  type Message,
  NONE,
  type ReadState,
  type Snapshot,
  type SoftState,
} from './types.js';

/** Renders the payload of a normal entry; the default is Go's %q of the bytes. */
export type EntryFormatter = (data: Uint8Array) => string;

// ---------------------------------------------------------------------------------------
// Go's %q for byte slices

const HEX = '0123456789abcdef';

function hexEscape(prefix: string, v: number, digits: number): string {
  let s = '';
  for (let i = digits - 1; i >= 0; i--) s += HEX[Math.floor(v / 16 ** i) % 16];
  return prefix + s;
}

/**
 * Decodes one UTF-8 sequence at `i` the way Go does: returns the code point and its width,
 * or undefined for a byte that does not start a valid, shortest-form, non-surrogate sequence
 * (Go then consumes just that one byte).
 */
function decodeRune(b: Uint8Array, i: number): { r: number; width: number } | undefined {
  const b0 = b[i]!;
  if (b0 < 0x80) return { r: b0, width: 1 };
  const cont = (j: number, lo = 0x80, hi = 0xbf): number | undefined => {
    const x = b[i + j];
    return x !== undefined && x >= lo && x <= hi ? x & 0x3f : undefined;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    const c1 = cont(1);
    return c1 === undefined ? undefined : { r: ((b0 & 0x1f) << 6) | c1, width: 2 };
  }
  if (b0 >= 0xe0 && b0 <= 0xef) {
    // E0 excludes overlong forms, ED excludes the UTF-16 surrogates.
    const c1 = b0 === 0xe0 ? cont(1, 0xa0) : b0 === 0xed ? cont(1, 0x80, 0x9f) : cont(1);
    const c2 = cont(2);
    if (c1 === undefined || c2 === undefined) return undefined;
    return { r: ((b0 & 0x0f) << 12) | (c1 << 6) | c2, width: 3 };
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    // F0 excludes overlong forms, F4 excludes code points above U+10FFFF.
    const c1 = b0 === 0xf0 ? cont(1, 0x90) : b0 === 0xf4 ? cont(1, 0x80, 0x8f) : cont(1);
    const c2 = cont(2);
    const c3 = cont(3);
    if (c1 === undefined || c2 === undefined || c3 === undefined) return undefined;
    return { r: ((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3, width: 4 };
  }
  return undefined;
}

// Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

const SHORT_ESCAPES: Readonly<Record<number, string>> = {
  7: '\\a',
  8: '\\b',
  12: '\\f',
  10: '\\n',
  13: '\\r',
  9: '\\t',
  11: '\\v',
};

function quoteRune(r: number): string {
  if (r === 0x22) return '\\"';
  if (r === 0x5c) return '\\\\';
  if (r === 0x20) return ' ';
  const ch = String.fromCodePoint(r);
  if (GO_PRINTABLE.test(ch)) return ch;
  const short = SHORT_ESCAPES[r];
  if (short !== undefined) return short;
  if (r < 0x20 || r === 0x7f) return hexEscape('\\x', r, 2);
  return r < 0x10000 ? hexEscape('\\u', r, 4) : hexEscape('\\U', r, 8);
}

/**
 * Go's `fmt.Sprintf("%q", bytes)`: a double-quoted string in which printable UTF-8 stays as
 * is, control characters use Go's escapes, other non-printable runes use \u/\U, and each
 * byte that is not valid UTF-8 becomes \xNN.
 */
export function goQuote(data: Uint8Array): string {
  let out = '"';
  let i = 0;
  while (i < data.length) {
    const rune = decodeRune(data, i);
    if (rune === undefined) {
      out += hexEscape('\\x', data[i]!, 2);
      i++;
    } else {
      out += quoteRune(rune.r);
      i += rune.width;
    }
  }
  return `${out}"`;
}

const defaultFormatter: EntryFormatter = goQuote;

// ---------------------------------------------------------------------------------------
// Small records

/** Go's %v of a []uint64: `[1 2 3]`, in the given order. */
function idList(ids: readonly number[]): string {
  return `[${ids.join(' ')}]`;
}

/**
 * A message endpoint: `None`, the local thread names, or the node id. etcd prints ids in
 * hex; we print them in decimal, as every other place (CLI, console, logs) names nodes,
 * so node 10 reads `10->1`, not `a->1`. Ids below 10 look the same either way.
 */
export function describeTarget(id: number): string {
  switch (id) {
    case NONE:
      return 'None';
    case LOCAL_APPEND_THREAD:
      return 'AppendThread';
    case LOCAL_APPLY_THREAD:
      return 'ApplyThread';
    default:
      return String(id);
  }
}

/** `Term:1 Vote:1 Commit:10`; the vote is left out when there is none. */
export function describeHardState(hs: HardState): string {
  const vote = hs.vote !== NONE ? ` Vote:${hs.vote}` : '';
  return `Term:${hs.term}${vote} Commit:${hs.commit}`;
}

/** `Lead:1 State:StateLeader` */
export function describeSoftState(ss: SoftState): string {
  return `Lead:${ss.lead} State:${ss.raftState}`;
}

/** `Voters:[1 2] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false` (lists as stored). */
export function describeConfState(cs: ConfState): string {
  return (
    `Voters:${idList(cs.voters)} VotersOutgoing:${idList(cs.votersOutgoing)} ` +
    `Learners:${idList(cs.learners)} LearnersNext:${idList(cs.learnersNext)} AutoLeave:${cs.autoLeave}`
  );
}

/** `Index:4 Term:1 ConfState:Voters:[1 2] ...` */
export function describeSnapshot(s: Snapshot): string {
  const { index, term, confState } = s.metadata;
  return `Index:${index} Term:${term} ConfState:${describeConfState(confState)}`;
}

/** Go's %v of a []ReadState: `[{10 [114 99 116 120]}]`. */
function describeReadStates(rs: readonly ReadState[]): string {
  return `[${rs.map((r) => `{${r.index} [${r.requestCtx.join(' ')}]}`).join(' ')}]`;
}

// ---------------------------------------------------------------------------------------
// Entries, messages, Readys

/**
 * `term/index Type payload`: a normal entry's payload through `fmt` (Go %q by default), a
 * conf change as its `v2 l3 r4` form, or the decoding error for a malformed one. An empty
 * rendering leaves nothing after the type.
 */
export function describeEntry(e: Entry, fmt: EntryFormatter = defaultFormatter): string {
  let payload: string;
  if (e.type === 'EntryNormal') {
    payload = fmt(e.data);
  } else {
    try {
      payload = confChangesToString(confChangeAsV2(decodeConfChangeEntry(e)).changes);
    } catch (err) {
      payload = err instanceof Error ? err.message : String(err);
    }
  }
  return `${e.term}/${e.index} ${e.type}${payload === '' ? '' : ` ${payload}`}`;
}

/** One described entry per line, each line ending in a newline (as etcd's DescribeEntries). */
export function describeEntries(ents: readonly Entry[], fmt: EntryFormatter = defaultFormatter): string {
  let out = '';
  for (const e of ents) out += `${describeEntry(e, fmt)}\n`;
  return out;
}

function describeMessageIndented(m: Message, indent: string, fmt: EntryFormatter): string {
  let out = `${indent}${describeTarget(m.from)}->${describeTarget(m.to)} ${m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) out += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) out += ` Commit:${m.commit}`;
  if (m.vote !== 0) out += ` Vote:${m.vote}`;
  if (m.entries.length === 1) {
    out += ` Entries:[${describeEntry(m.entries[0]!, fmt)}]`;
  } else if (m.entries.length > 1) {
    // Several entries get a line each, indented one level below the message.
    out += ' Entries:[';
    for (const e of m.entries) out += `\n${indent}  ${describeEntry(e, fmt)}`;
    out += `\n${indent}]`;
  }
  if (m.snapshot !== undefined && !isEmptySnapshot(m.snapshot)) {
    out += `\n${indent}  Snapshot: ${describeSnapshot(m.snapshot)}`;
  }
  if (m.responses.length > 0) {
    out += ' Responses:[';
    for (const r of m.responses) out += `\n${describeMessageIndented(r, `${indent}  `, fmt)}`;
    out += `\n${indent}]`;
  }
  return out;
}

/**
 * `from->to Type Term:T Log:logTerm/index` followed by the parts that are set: rejection,
 * commit, vote, entries, snapshot and responses. Several entries, a snapshot and responses
 * continue on indented lines; there is no trailing newline.
 */
export function describeMessage(m: Message, fmt: EntryFormatter = defaultFormatter): string {
  return describeMessageIndented(m, '', fmt);
}

/**
 * `Ready MustSync=<bool>:` followed by one line per present part (soft state, hard state,
 * read states, entries, snapshot, committed entries, messages), every line ending in a
 * newline; `<empty Ready>` (no newline) when nothing is present.
 */
export function describeReady(rd: Ready, fmt: EntryFormatter = defaultFormatter): string {
  let body = '';
  if (rd.softState !== undefined) body += `${describeSoftState(rd.softState)}\n`;
  if (rd.hardState !== undefined && !isEmptyHardState(rd.hardState)) {
    body += `HardState ${describeHardState(rd.hardState)}\n`;
  }
  if (rd.readStates.length > 0) body += `ReadStates ${describeReadStates(rd.readStates)}\n`;
  if (rd.entries.length > 0) body += `Entries:\n${describeEntries(rd.entries, fmt)}`;
  if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) {
    body += `Snapshot ${describeSnapshot(rd.snapshot)}\n`;
  }
  if (rd.committedEntries.length > 0) {
    body += `CommittedEntries:\n${describeEntries(rd.committedEntries, fmt)}`;
  }
  if (rd.messages.length > 0) {
    body += 'Messages:\n';
    for (const m of rd.messages) body += `${describeMessage(m, fmt)}\n`;
  }
  return body === '' ? '<empty Ready>' : `Ready MustSync=${rd.mustSync}:\n${body}`;
}
