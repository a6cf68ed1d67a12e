// The operator protocol spoken over the node's `/control` WebSocket: JSON text frames, one
// message per frame — or, once both sides have said so in their hellos, a JSON array of
// messages in one frame (batching; see parseClientFrames). This module is the single source of truth for the wire shapes; the
// server, the client, the CLI and docs/protocol.md all follow it.
//
// Validation policy: frames a client sends are parsed strictly (unknown keys are errors) so
// that an operator's typo (`evryMs`) is reported with the field's name instead of being
// silently ignored. Frames the node sends are parsed leniently (unknown keys are stripped) so
// that a newer node may add fields without breaking older consoles.
//
// This module imports nothing from the Raft core: the client and the console depend on it,
// and must not pull the core in.

import { z } from 'zod';

/** Bumped only for incompatible changes; additive fields keep the version. */
export const PROTOCOL_VERSION = 1;

// ---------------------------------------------------------------------------------------
// Building blocks

/** Terms, indexes, counters: JSON numbers that are non-negative safe integers. */
const Count = z.int().nonnegative();
/** A node id; 0 means "none" where a field allows it (leader, vote). */
const NodeIdOrNone = z.int().nonnegative();
/** A node id that must name a node. */
const NodeId = z.int().positive();

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export const MemberSchema = z.object({
  id: NodeId,
  /** host:port of the node's server (peers and operators use the same port). */
  address: z.string(),
  learner: z.boolean(),
});
export type Member = z.infer<typeof MemberSchema>;

export const FAULT_KINDS = ['drop', 'delay', 'isolate', 'heal'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

// One flat shape for faults, matching the transport's setFault argument; which fields a kind
// needs is checked separately (see FaultArgsSchema) so errors can name the missing field.
const faultShape = {
  kind: z.enum(FAULT_KINDS),
  /** Peers the fault applies to; absent means every peer. */
  peers: z.array(NodeId).optional(),
  /** Drop probability, 0..1. */
  probability: z.number().min(0).max(1).optional(),
  /** Added latency in milliseconds. */
  ms: z.int().nonnegative().max(600_000).optional(),
  /** Direction of traffic affected; absent means both. */
  direction: z.enum(['in', 'out', 'both']).optional(),
};

/** A fault as the node reports it (in state frames and fault events). */
export const FaultSchema = z.object(faultShape);
export type Fault = z.infer<typeof FaultSchema>;

export const ENTRY_TYPES = ['EntryNormal', 'EntryConfChange', 'EntryConfChangeV2'] as const;

export const EntryViewSchema = z.object({
  term: Count,
  index: Count,
  type: z.enum(ENTRY_TYPES),
  /** The payload in describe form: Go-quoted bytes for a normal entry, `v2 l3 r4` for a conf change. */
  data: z.string(),
});
export type EntryView = z.infer<typeof EntryViewSchema>;

export const ConfStateSchema = z.object({
  voters: z.array(NodeId),
  votersOutgoing: z.array(NodeId),
  learners: z.array(NodeId),
  learnersNext: z.array(NodeId),
  autoLeave: z.boolean(),
});
export type ConfStateView = z.infer<typeof ConfStateSchema>;

export const ROLES = ['leader', 'follower', 'candidate', 'precandidate'] as const;
export type Role = (typeof ROLES)[number];

export const ProgressSchema = z.object({
  id: NodeId,
  match: Count,
  next: Count,
  state: z.enum(['StateProbe', 'StateReplicate', 'StateSnapshot']),
  inflight: Count,
  paused: z.boolean(),
  recentActive: z.boolean(),
  learner: z.boolean(),
  pendingSnapshot: Count,
});
export type ProgressView = z.infer<typeof ProgressSchema>;

export const TransportPeerSchema = z.object({
  peer: NodeId,
  address: z.string(),
  connected: z.boolean(),
  lastError: z.string().optional(),
  queued: Count,
});
export type TransportPeerView = z.infer<typeof TransportPeerSchema>;

export const NodeStateSchema = z.object({
  id: NodeId,
  role: z.enum(ROLES),
  term: Count,
  vote: NodeIdOrNone,
  leader: NodeIdOrNone,
  commit: Count,
  applied: Count,
  lastIndex: Count,
  firstIndex: Count,
  leadTransferee: NodeIdOrNone,
  config: ConfStateSchema,
  /** Present on the leader only. */
  progress: z.array(ProgressSchema).optional(),
  transport: z.array(TransportPeerSchema),
  faults: z.array(FaultSchema),
  snapshotIndex: Count,
  kvKeys: Count,
  /** When the node took this state, ms since the epoch. */
  at: Count,
});
export type NodeState = z.infer<typeof NodeStateSchema>;

// ---------------------------------------------------------------------------------------
// Events

export const EVENT_KINDS = [
  'ready',
  'message',
  'election',
  'leader',
  'confchange',
  'snapshot',
  'fault',
  'log',
  'apply',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const eventBase = {
  /** Per-node sequence number, increasing by one per published event; gaps mean loss or sampling. */
  seq: Count,
  at: Count,
  /** The node that published the event. */
  node: NodeId,
};

export const ReadyEventSchema = z.object({
  ...eventBase,
  kind: z.literal('ready'),
  hardState: z.object({ term: Count, vote: NodeIdOrNone, commit: Count }).optional(),
  softState: z
    .object({
      lead: NodeIdOrNone,
      raftState: z.enum(['StateFollower', 'StateCandidate', 'StateLeader', 'StatePreCandidate']),
    })
    .optional(),
  entries: z.array(EntryViewSchema),
  committed: z.array(EntryViewSchema),
  /** Number of messages in the Ready (each also gets its own `message` event). */
  messages: Count,
  mustSync: z.boolean(),
  /** describeReady output. */
  describe: z.string(),
});

export const MessageEventSchema = z.object({
  ...eventBase,
  kind: z.literal('message'),
  from: Count,
  to: Count,
  /** raftpb message type name, e.g. `MsgApp`. Kept a string so new types do not break consoles. */
  msgType: z.string(),
  term: Count,
  logTerm: Count,
  index: Count,
  commit: Count,
  reject: z.boolean(),
  /** Number of entries carried. */
  entries: Count,
  /** describeMessage output. */
  describe: z.string(),
  direction: z.enum(['out', 'in']),
});

export const ElectionEventSchema = z.object({
  ...eventBase,
  kind: z.literal('election'),
  term: Count,
  role: z.enum(ROLES),
});

export const LeaderEventSchema = z.object({
  ...eventBase,
  kind: z.literal('leader'),
  /** 0 when the node lost track of the leader. */
  leader: NodeIdOrNone,
  term: Count,
});

export const ConfChangeEventSchema = z.object({
  ...eventBase,
  kind: z.literal('confchange'),
  /** The applied change in `v2 l3 r4` form. */
  change: z.string(),
  confState: ConfStateSchema,
});

export const SnapshotEventSchema = z.object({
  ...eventBase,
  kind: z.literal('snapshot'),
  index: Count,
  term: Count,
  op: z.enum(['created', 'sent', 'restored']),
});

export const FaultEventSchema = z.object({
  ...eventBase,
  kind: z.literal('fault'),
  fault: FaultSchema,
});

export const LogEventSchema = z.object({
  ...eventBase,
  kind: z.literal('log'),
  level: z.enum(['debug', 'info', 'warn', 'error']),
  message: z.string(),
});

export const ApplyEventSchema = z.object({
  ...eventBase,
  kind: z.literal('apply'),
  index: Count,
  term: Count,
  /** What the entry did to the state machine, e.g. `put k`, `noop`, `confchange`. */
  op: z.string(),
});

export const NodeEventSchema = z.discriminatedUnion('kind', [
  ReadyEventSchema,
  MessageEventSchema,
  ElectionEventSchema,
  LeaderEventSchema,
  ConfChangeEventSchema,
  SnapshotEventSchema,
  FaultEventSchema,
  LogEventSchema,
  ApplyEventSchema,
]);
export type NodeEvent = z.infer<typeof NodeEventSchema>;
/** The event of one kind, e.g. `EventOf<'leader'>`. */
export type EventOf<K extends EventKind> = Extract<NodeEvent, { kind: K }>;

// ---------------------------------------------------------------------------------------
// Commands

/** Largest key, in UTF-8 bytes, a write or read may name (the HTTP gateway applies it too). */
export const MAX_KEY_BYTES = 4 * 1024;
/** Largest value, in UTF-8 bytes, a write may carry (the HTTP gateway applies it too). */
export const MAX_VALUE_BYTES = 1024 * 1024;

/** UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Whether s takes at most `max` bytes in UTF-8; a string of up to max/3 chars always does. */
function fitsUtf8(s: string, max: number): boolean {
  return s.length * 3 <= max || (s.length <= max && utf8Length(s) <= max);
}

const Key = z
  .string()
  .min(1)
  .refine((s) => fitsUtf8(s, MAX_KEY_BYTES), {
    message: `keys are at most ${MAX_KEY_BYTES} bytes (UTF-8)`,
  });
const Value = z.string().refine((s) => fitsUtf8(s, MAX_VALUE_BYTES), {
  message: `values are at most ${MAX_VALUE_BYTES} bytes (UTF-8)`,
});
const NoArgs = z.strictObject({});

// Faults are one flat object (as the transport takes it) with per-kind requirements, so a
// `delay` without `ms` is reported as a missing `ms` rather than as a union mismatch.
export const FaultArgsSchema = z.strictObject(faultShape).superRefine((f, ctx) => {
  const need = (field: 'probability' | 'ms' | 'peers', why: string) => {
    if (f[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: why });
  };
  if (f.kind === 'drop') need('probability', "a 'drop' fault needs probability (0..1)");
  if (f.kind === 'delay') need('ms', "a 'delay' fault needs ms");
  if (f.kind === 'isolate') {
    need('peers', "an 'isolate' fault needs the peers to cut off");
    if (f.peers !== undefined && f.peers.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['peers'],
        message: "an 'isolate' fault needs at least one peer",
      });
    }
  }
});

/** Longest client id a request may carry, in UTF-16 units. */
const MAX_CLIENT_ID_LENGTH = 1024;

/**
 * Optional request identity of a write. A client that retries with the same clientId and
 * seq has the write applied at most once, and gets the first application's result.
 */
const RequestId = {
  clientId: z.string().min(1).max(MAX_CLIENT_ID_LENGTH).optional(),
  seq: z.int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
};

/**
 * A request id is the pair or nothing: a seq alone would be filed under the node's own
 * client id and collide with the node's own numbering (a write dropped as an old retry),
 * and a clientId alone would get a seq from that numbering and collide with the client's.
 */
function pairedRequestId(
  a: { clientId?: string | undefined; seq?: number | undefined },
  ctx: z.RefinementCtx,
): void {
  if ((a.clientId === undefined) === (a.seq === undefined)) return;
  const missing = a.clientId === undefined ? 'clientId' : 'seq';
  ctx.addIssue({
    code: 'custom',
    path: [missing],
    message: `clientId and seq identify a request together: give both or neither (${missing} is missing)`,
  });
}

/** The argument schema of every command; the keys are the command names. */
export const COMMAND_ARGS = {
  /**
   * Makes this node leader. With a leader known, it asks that leader to hand over (a
   * leadership transfer to this node: MsgTransferLeader, MsgTimeoutNow, then a forced
   * election that leader leases do not block). Without one, or with `hup`, it only steps
   * MsgHup — which PreVote and CheckQuorum rightly ignore while a healthy leader exists.
   */
  campaign: z.strictObject({ hup: z.boolean().optional() }),
  transfer: z.strictObject({ to: NodeId }),
  'forget-leader': NoArgs,
  propose: z.strictObject({ data: Value }),
  /** prevKv: also answer with the entry the write replaced (as etcd's prev_kv); off by default. */
  put: z
    .strictObject({ key: Key, value: Value, prevKv: z.boolean().optional(), ...RequestId })
    .superRefine(pairedRequestId),
  /** serializable: answer from local state without a ReadIndex round (may be stale). */
  get: z.strictObject({ key: Key, serializable: z.boolean().optional() }),
  delete: z
    .strictObject({ key: Key, prevKv: z.boolean().optional(), ...RequestId })
    .superRefine(pairedRequestId),
  /** expected null means "the key must be absent". */
  cas: z
    .strictObject({ key: Key, expected: Value.nullable(), value: Value, ...RequestId })
    .superRefine(pairedRequestId),
  'read-index': NoArgs,
  'member-add': z.strictObject({ id: NodeId, address: z.string().min(1), learner: z.boolean().optional() }),
  'member-remove': z.strictObject({ id: NodeId }),
  'member-promote': z.strictObject({ id: NodeId }),
  snapshot: NoArgs,
  fault: FaultArgsSchema,
  status: NoArgs,
  members: NoArgs,
  log: z.strictObject({ from: NodeId.optional(), limit: z.int().min(1).max(10_000).optional() }),
} as const;

export type CommandName = keyof typeof COMMAND_ARGS;
export const COMMAND_NAMES = Object.keys(COMMAND_ARGS) as CommandName[];
export type CommandArgs<N extends CommandName> = z.infer<(typeof COMMAND_ARGS)[N]>;

export function isCommandName(s: string): s is CommandName {
  return Object.hasOwn(COMMAND_ARGS, s);
}

/**
 * A command with its arguments as one tuple, so an implementation written as
 * `execute(...[cmd, args]: CommandCall)` gets `args` narrowed by `switch (cmd)`.
 */
export type CommandCall = { [N in CommandName]: [command: N, args: CommandArgs<N>] }[CommandName];

/**
 * Result values with a documented shape; other commands answer with whatever JSON the node
 * implementation returns (see docs/protocol.md).
 */
export const COMMAND_RESULTS = {
  status: NodeStateSchema,
  members: z.array(MemberSchema),
} as const;
export type CommandValue<N extends CommandName> = N extends keyof typeof COMMAND_RESULTS
  ? z.infer<(typeof COMMAND_RESULTS)[N]>
  : JsonValue;

export const COMMAND_ERROR_CODES = [
  'unknown_command',
  'bad_args',
  'not_leader',
  'proposal_dropped',
  'timeout',
  'no_leader',
  'faults_disabled',
  'unavailable',
  'internal',
] as const;
export type CommandErrorCode = (typeof COMMAND_ERROR_CODES)[number];

export const FRAME_ERROR_CODES = ['bad_frame', 'bad_version', 'unauthorized'] as const;
export type FrameErrorCode = (typeof FRAME_ERROR_CODES)[number];

/**
 * What a NodeApi throws to answer a command with an error. `leader` accompanies
 * `not_leader` so a client can redirect.
 */
export class CommandError extends Error {
  override name = 'CommandError';
  readonly code: CommandErrorCode;
  readonly leader: number | undefined;
  constructor(code: CommandErrorCode, message: string, leader?: number) {
    super(message);
    this.code = code;
    this.leader = leader;
  }
}

// ---------------------------------------------------------------------------------------
// Client → node frames

export const ClientHelloSchema = z.strictObject({
  type: z.literal('hello'),
  version: z.int(),
  token: z.string().max(4096).optional(),
  /**
   * The client reads batched frames: the node may then send several messages as one JSON
   * array in a single text frame. Absent means one message per frame.
   */
  batch: z.boolean().optional(),
  /**
   * The client may send plain puts in binary frames and reads their answers in binary
   * frames (see protocol/binary.ts). Absent means JSON only, both ways.
   */
  binary: z.boolean().optional(),
});
export type ClientHello = z.infer<typeof ClientHelloSchema>;

export const SubscribeOptionsSchema = z.strictObject({
  /** Push a state frame now and then every `everyMs`; absent means no state frames. */
  state: z.strictObject({ everyMs: z.int().min(50).max(86_400_000) }).optional(),
  /** Stream events; absent means no events. */
  events: z
    .strictObject({
      /** Only these kinds; absent means every kind. */
      kinds: z.array(z.enum(EVENT_KINDS)).optional(),
      /** Fraction of (kind-matching) events to deliver, 0..1; absent means 1. */
      sample: z.number().min(0).max(1).optional(),
    })
    .optional(),
});
export type SubscribeOptions = z.infer<typeof SubscribeOptionsSchema>;

export const SubscribeSchema = SubscribeOptionsSchema.extend({ type: z.literal('subscribe') });
export type SubscribeFrame = z.infer<typeof SubscribeSchema>;

export const UnsubscribeSchema = z.strictObject({ type: z.literal('unsubscribe') });
export type UnsubscribeFrame = z.infer<typeof UnsubscribeSchema>;

/** The command envelope; `args` is checked against COMMAND_ARGS[command] in a second step. */
export const CommandEnvelopeSchema = z.strictObject({
  type: z.literal('command'),
  /** Chosen by the client; echoed in the result. */
  id: Count,
  command: z.string(),
  /** May be omitted for commands without arguments. */
  args: z.unknown().optional(),
});

export type CommandFrame = {
  [N in CommandName]: { type: 'command'; id: number; command: N; args: CommandArgs<N> };
}[CommandName];

export type ClientFrame = ClientHello | SubscribeFrame | UnsubscribeFrame | CommandFrame;

// ---------------------------------------------------------------------------------------
// Node → client frames

export const NodeHelloSchema = z.object({
  type: z.literal('hello'),
  version: z.int(),
  nodeId: NodeId,
  clusterId: z.string(),
  members: z.array(MemberSchema),
  /** Whether the `fault` command is enabled on this node. */
  allowFaults: z.boolean(),
  /** The node accepts batched client frames (a JSON array of messages in one text frame). */
  batch: z.boolean().optional(),
  /** The node accepts binary put frames from a client whose hello had `binary: true`. */
  binary: z.boolean().optional(),
  /** Commands one connection may have running at once; the node refuses more with `unavailable`. */
  maxInFlight: z.int().positive().optional(),
});
export type NodeHello = z.infer<typeof NodeHelloSchema>;
/** What the node supplies for its hello; the server adds version and allowFaults. */
export type HelloInfo = Pick<NodeHello, 'nodeId' | 'clusterId' | 'members'>;

export const StateFrameSchema = z.object({ type: z.literal('state'), state: NodeStateSchema });
export type StateFrame = z.infer<typeof StateFrameSchema>;

export const EventFrameSchema = z.object({ type: z.literal('event'), event: NodeEventSchema });
export type EventFrame = z.infer<typeof EventFrameSchema>;

export const LostFrameSchema = z.object({ type: z.literal('lost'), count: z.int().positive() });
export type LostFrame = z.infer<typeof LostFrameSchema>;

export const ResultErrorSchema = z.object({
  code: z.enum(COMMAND_ERROR_CODES),
  message: z.string(),
  /** With not_leader: the leader to retry against, when known. */
  leader: NodeId.optional(),
  /** With bad_args / unknown_command: the offending field path, e.g. `args.key`. */
  field: z.string().optional(),
});
export type ResultError = z.infer<typeof ResultErrorSchema>;

export const ResultOkSchema = z.object({
  type: z.literal('result'),
  id: Count,
  ok: z.literal(true),
  value: z.json(),
});
export const ResultErrSchema = z.object({
  type: z.literal('result'),
  id: Count,
  ok: z.literal(false),
  error: ResultErrorSchema,
});
export const ResultFrameSchema = z.discriminatedUnion('ok', [ResultOkSchema, ResultErrSchema]);
export type ResultFrame = z.infer<typeof ResultFrameSchema>;

export const FrameErrorSchema = z.object({
  code: z.enum(FRAME_ERROR_CODES),
  message: z.string(),
  /** The offending field path in the frame that was refused, e.g. `state.everyMs`. */
  field: z.string().optional(),
});
export type FrameError = z.infer<typeof FrameErrorSchema>;

export const ErrorFrameSchema = z.object({ type: z.literal('error'), error: FrameErrorSchema });
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;

export type NodeFrame = NodeHello | StateFrame | EventFrame | LostFrame | ResultFrame | ErrorFrame;

// ---------------------------------------------------------------------------------------
// Parsing

/** A refused client frame. `command` is set when the frame was a command with a usable id:
 * the node then answers with a `result` error for that id instead of a generic `error` frame,
 * so the caller's pending request settles. */
export interface ClientFrameFailure {
  ok: false;
  error: FrameError;
  command?: { id: number; code: 'unknown_command' | 'bad_args' };
}

export type ParseResult<T> = { ok: true; msg: T } | ({ ok: false } & Omit<ClientFrameFailure, 'ok'>);

/** `state.everyMs`, `events.kinds[1]`, `args.key`; empty for the frame itself. */
function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function joinPath(prefix: string, rest: string): string {
  if (prefix === '') return rest;
  if (rest === '') return prefix;
  return rest.startsWith('[') ? prefix + rest : `${prefix}.${rest}`;
}

/** Names the first offending field (for an unknown key: the key itself) and describes up to three issues. */
function describeIssues(err: z.ZodError, prefix = ''): { field: string; message: string } {
  const parts: string[] = [];
  let field: string | undefined;
  // An unknown key is most often a typo of a missing one; naming it is the better hint.
  const issues = [...err.issues].sort(
    (a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'),
  );
  for (const issue of issues) {
    let path = joinPath(prefix, fieldPath(issue.path));
    if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
      path = joinPath(path, issue.keys[0]!);
    }
    field ??= path;
    if (parts.length < 3) parts.push(`${path === '' ? '(frame)' : path}: ${issue.message}`);
  }
  if (err.issues.length > 3) parts.push(`(+${err.issues.length - 3} more)`);
  return { field: field ?? prefix, message: parts.join('; ') };
}

function decodeJson(text: string): { ok: true; value: unknown } | { ok: false; error: FrameError } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, error: { code: 'bad_frame', message: `frame is not valid JSON: ${why}` } };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const CLIENT_FRAME_TYPES = ['hello', 'subscribe', 'unsubscribe', 'command'] as const;

/** Checks that the frame is an object whose `type` is one of `types`, naming `type` otherwise. */
function frameType<T extends string>(
  value: unknown,
  types: readonly T[],
): { ok: true; type: T } | { ok: false; error: FrameError } {
  if (!isRecord(value)) {
    return { ok: false, error: { code: 'bad_frame', message: 'frame must be a JSON object' } };
  }
  const type = value.type;
  if (typeof type !== 'string' || !(types as readonly string[]).includes(type)) {
    const got = typeof type === 'string' ? `'${type}'` : type === undefined ? 'nothing' : typeof type;
    return {
      ok: false,
      error: {
        code: 'bad_frame',
        field: 'type',
        message: `type: expected one of ${types.join('|')}, got ${got}`,
      },
    };
  }
  return { ok: true, type: type as T };
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown): ParseResult<T> {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, msg: r.data };
  const { field, message } = describeIssues(r.error);
  return { ok: false, error: { code: 'bad_frame', field, message } };
}

/** Validates a command's arguments; a failure names the field under `args`. */
export function parseCommandArgs<N extends CommandName>(
  command: N,
  args: unknown,
): { ok: true; args: CommandArgs<N> } | { ok: false; field: string; message: string } {
  if (command === 'put' && isPlainPut(args)) return { ok: true, args: args as CommandArgs<N> };
  // Omitted args mean "no arguments"; the schema then decides whether that is enough.
  const schema: z.ZodType = COMMAND_ARGS[command];
  const r = schema.safeParse(args ?? {});
  // The schema is COMMAND_ARGS[command]; the generic lookup loses that link, hence the assertion.
  if (r.success) return { ok: true, args: r.data as CommandArgs<N> };
  return { ok: false, ...describeIssues(r.error, 'args') };
}

const PUT_KEYS = new Set(['key', 'value', 'prevKv', 'clientId', 'seq']);

/**
 * A put's arguments checked by hand, as COMMAND_ARGS.put would accept them: a put is most
 * of a busy node's traffic, and the schema's walk costs more than these checks. Anything
 * else (including every malformed put) goes to the schema, whose errors name the field.
 */
function isPlainPut(a: unknown): a is CommandArgs<'put'> {
  if (typeof a !== 'object' || a === null) return false;
  const { key, value, prevKv, clientId, seq } = a as Record<string, unknown>;
  if (typeof key !== 'string' || key.length === 0 || !fitsUtf8(key, MAX_KEY_BYTES)) return false;
  if (typeof value !== 'string' || !fitsUtf8(value, MAX_VALUE_BYTES)) return false;
  if (prevKv !== undefined && typeof prevKv !== 'boolean') return false;
  if (
    clientId !== undefined &&
    (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > MAX_CLIENT_ID_LENGTH)
  ) {
    return false;
  }
  if (seq !== undefined && (!Number.isSafeInteger(seq) || (seq as number) < 1)) return false;
  if ((clientId === undefined) !== (seq === undefined)) return false;
  for (const k in a) if (!PUT_KEYS.has(k)) return false;
  return true;
}

/**
 * Parses and validates one client→node text frame. On failure the error names the offending
 * field path (`state.everyMs`, `args.key`); a command frame with a valid id that names an
 * unknown command or carries bad arguments also reports `command`, so the node can answer
 * that request with a `result` error.
 */
export function parseClientFrame(text: string): ParseResult<ClientFrame> {
  const json = decodeJson(text);
  if (!json.ok) return json;
  return parseClientValue(json.value);
}

/** Most messages one batched frame may carry, either way. */
export const MAX_BATCH_FRAMES = 10_000;

/**
 * Parses a client→node text frame that may be a batch: a JSON array of messages, each
 * handled as if it had come in its own frame (so one bad message fails alone). A frame that
 * is not JSON, or an empty or oversized batch, yields a single failure.
 */
export function parseClientFrames(text: string): ParseResult<ClientFrame>[] {
  return parseFrames(text, parseClientValue);
}

/** One frame, or each message of a batch, through `parseValue`. */
function parseFrames<T>(text: string, parseValue: (value: unknown) => ParseResult<T>): ParseResult<T>[] {
  const json = decodeJson(text);
  if (!json.ok) return [json];
  const batch = json.value;
  if (!Array.isArray(batch)) return [parseValue(batch)];
  if (batch.length === 0) {
    return [{ ok: false, error: { code: 'bad_frame', message: 'a batch must hold at least one message' } }];
  }
  if (batch.length > MAX_BATCH_FRAMES) {
    const message = `a batch holds at most ${MAX_BATCH_FRAMES} messages, not ${batch.length}`;
    return [{ ok: false, error: { code: 'bad_frame', message } }];
  }
  return batch.map(parseValue);
}

const COMMAND_ENVELOPE_KEYS = new Set(['type', 'id', 'command', 'args']);

/**
 * The command envelope checked by hand: it is on every request's path, and the schema's
 * generic walk costs more than the checks themselves. Anything unusual goes to the schema,
 * whose error messages name the field.
 */
function isPlainEnvelope(
  v: Record<string, unknown>,
): v is { type: 'command'; id: number; command: string; args?: unknown } {
  if (!Number.isSafeInteger(v.id) || (v.id as number) < 0 || typeof v.command !== 'string') return false;
  for (const k in v) if (!COMMAND_ENVELOPE_KEYS.has(k)) return false;
  return true;
}

function parseClientValue(value: unknown): ParseResult<ClientFrame> {
  const t = frameType(value, CLIENT_FRAME_TYPES);
  if (!t.ok) return t;
  switch (t.type) {
    case 'hello':
      return parseWith(ClientHelloSchema, value);
    case 'subscribe':
      return parseWith(SubscribeSchema, value);
    case 'unsubscribe':
      return parseWith(UnsubscribeSchema, value);
    case 'command': {
      const record = value as Record<string, unknown>;
      let envelope: { id: number; command: string; args?: unknown };
      if (isPlainEnvelope(record)) envelope = record;
      else {
        const env = parseWith(CommandEnvelopeSchema, value);
        if (!env.ok) return env;
        envelope = env.msg;
      }
      const { id, command, args } = envelope;
      if (!isCommandName(command)) {
        return {
          ok: false,
          error: {
            code: 'bad_frame',
            field: 'command',
            message: `command: unknown command '${command}' (known: ${COMMAND_NAMES.join(', ')})`,
          },
          command: { id, code: 'unknown_command' },
        };
      }
      const parsed = parseCommandArgs(command, args);
      if (!parsed.ok) {
        return {
          ok: false,
          error: { code: 'bad_frame', field: parsed.field, message: parsed.message },
          command: { id, code: 'bad_args' },
        };
      }
      // The name and its arguments were checked together just above; TypeScript cannot
      // correlate the two through the generic, hence the assertion.
      return { ok: true, msg: { type: 'command', id, command, args: parsed.args } as CommandFrame };
    }
  }
}

const NODE_FRAME_TYPES = ['hello', 'state', 'event', 'lost', 'result', 'error'] as const;

/** Parses one node→client text frame (lenient about unknown keys, strict about known ones). */
export function parseNodeFrame(text: string): ParseResult<NodeFrame> {
  const json = decodeJson(text);
  if (!json.ok) return json;
  return parseNodeValue(json.value);
}

/** Like parseNodeFrame, for a frame that may be a batch (a JSON array of messages). */
export function parseNodeFrames(text: string): ParseResult<NodeFrame>[] {
  return parseFrames(text, parseNodeValue);
}

function parseNodeValue(value: unknown): ParseResult<NodeFrame> {
  const t = frameType(value, NODE_FRAME_TYPES);
  if (!t.ok) return t;
  switch (t.type) {
    case 'hello':
      return parseWith(NodeHelloSchema, value);
    case 'state':
      return parseWith(StateFrameSchema, value);
    case 'event':
      return parseWith(EventFrameSchema, value);
    case 'lost':
      return parseWith(LostFrameSchema, value);
    case 'result':
      return parseResult(value as Record<string, unknown>);
    case 'error':
      return parseWith(ErrorFrameSchema, value);
  }
}

/**
 * A successful result is checked by hand: it is the answer to every request, and its value
 * came out of JSON.parse, so it is JSON by construction and needs no walk. Failed results
 * and anything malformed go through the schema for its field-naming errors.
 */
function parseResult(v: Record<string, unknown>): ParseResult<ResultFrame> {
  const id = v.id;
  if (v.ok === true && Number.isSafeInteger(id) && (id as number) >= 0 && 'value' in v) {
    return { ok: true, msg: { type: 'result', id: id as number, ok: true, value: v.value as JsonValue } };
  }
  return parseWith(ResultFrameSchema, v);
}

/** Builds the `args`-narrowed call for a parsed command frame (see CommandCall). */
export function commandCall(frame: CommandFrame): CommandCall {
  // A CommandFrame's command and args are correlated by construction (parseClientFrame).
  return [frame.command, frame.args] as CommandCall;
}
