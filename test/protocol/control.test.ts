import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  COMMAND_ARGS,
  COMMAND_NAMES,
  type CommandCall,
  type ENTRY_TYPES,
  EVENT_KINDS,
  type EventKind,
  MAX_BATCH_FRAMES,
  type NodeEvent,
  type NodeState,
  PROTOCOL_VERSION,
  parseClientFrame,
  parseClientFrames,
  parseCommandArgs,
  parseNodeFrame,
  parseNodeFrames,
} from '../../src/protocol/control.js';
import type { EntryType } from '../../src/raft/types.js';

const j = (v: unknown) => JSON.stringify(v);

function failure(text: string) {
  const r = parseClientFrame(text);
  if (r.ok) throw new Error(`expected a failure for ${text}`);
  return r;
}

const state: NodeState = {
  id: 1,
  role: 'leader',
  term: 2,
  vote: 1,
  leader: 1,
  commit: 5,
  applied: 5,
  lastIndex: 5,
  firstIndex: 1,
  leadTransferee: 0,
  config: { voters: [1, 2, 3], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
  progress: [
    {
      id: 2,
      match: 5,
      next: 6,
      state: 'StateReplicate',
      inflight: 0,
      paused: false,
      recentActive: true,
      learner: false,
      pendingSnapshot: 0,
    },
  ],
  transport: [{ peer: 2, address: '127.0.0.1:7002', connected: false, lastError: 'ECONNREFUSED', queued: 3 }],
  faults: [{ kind: 'drop', peers: [2], probability: 0.5, direction: 'out' }],
  snapshotIndex: 0,
  kvKeys: 2,
  at: 1_700_000_000_000,
};

describe('parseClientFrame', () => {
  it('accepts each frame type', () => {
    expect(parseClientFrame(j({ type: 'hello', version: PROTOCOL_VERSION, token: 't' }))).toEqual({
      ok: true,
      msg: { type: 'hello', version: 1, token: 't' },
    });
    expect(
      parseClientFrame(
        j({
          type: 'subscribe',
          state: { everyMs: 250 },
          events: { kinds: ['leader', 'message'], sample: 0.1 },
        }),
      ),
    ).toEqual({
      ok: true,
      msg: {
        type: 'subscribe',
        state: { everyMs: 250 },
        events: { kinds: ['leader', 'message'], sample: 0.1 },
      },
    });
    expect(parseClientFrame(j({ type: 'unsubscribe' }))).toEqual({ ok: true, msg: { type: 'unsubscribe' } });
    expect(
      parseClientFrame(
        j({ type: 'command', id: 4, command: 'cas', args: { key: 'k', expected: null, value: 'v' } }),
      ),
    ).toEqual({
      ok: true,
      msg: { type: 'command', id: 4, command: 'cas', args: { key: 'k', expected: null, value: 'v' } },
    });
  });

  it('treats omitted args as no arguments', () => {
    expect(parseClientFrame(j({ type: 'command', id: 1, command: 'status' }))).toEqual({
      ok: true,
      msg: { type: 'command', id: 1, command: 'status', args: {} },
    });
    // …but not for a command that needs some.
    expect(failure(j({ type: 'command', id: 1, command: 'transfer' })).error.field).toBe('args.to');
  });

  it('names the offending field', () => {
    const cases: [unknown, string][] = [
      [{ type: 'hello' }, 'version'],
      [{ type: 'hello', version: 1.5 }, 'version'],
      [{ type: 'hello', version: 1, tokn: 'x' }, 'tokn'],
      [{ type: 'subscribe', state: { everyMs: 49 } }, 'state.everyMs'],
      [{ type: 'subscribe', events: { sample: 1.5 } }, 'events.sample'],
      [{ type: 'subscribe', events: { kinds: ['apply', 'nope'] } }, 'events.kinds[1]'],
      [{ type: 'unsubscribe', now: true }, 'now'],
      [{ type: 'command', id: -1, command: 'status' }, 'id'],
      [{ type: 'command', command: 'status' }, 'id'],
      [{ type: 'ping' }, 'type'],
      [{ kind: 'hello' }, 'type'],
    ];
    for (const [frame, field] of cases) {
      const r = failure(j(frame));
      expect(r.error, j(frame)).toMatchObject({ code: 'bad_frame', field });
      expect(r.error.message).toContain(field);
      expect(r.command).toBeUndefined();
    }
  });

  it('reports unknown commands and bad args against the command id', () => {
    const unknown = failure(j({ type: 'command', id: 9, command: 'reboot', args: {} }));
    expect(unknown.command).toEqual({ id: 9, code: 'unknown_command' });
    expect(unknown.error.field).toBe('command');
    expect(unknown.error.message).toContain('reboot');

    const cases: [string, unknown, string][] = [
      ['put', { key: 'k' }, 'args.value'],
      ['put', { key: '', value: 'v' }, 'args.key'],
      ['put', { key: 'k', value: 'v', ttl: 3 }, 'args.ttl'],
      ['get', { key: 'k', serializable: 'yes' }, 'args.serializable'],
      ['member-add', { id: 0, address: 'h:1' }, 'args.id'],
      ['member-add', { id: 4 }, 'args.address'],
      ['fault', { kind: 'drop', peers: [2] }, 'args.probability'],
      ['fault', { kind: 'drop', probability: 2 }, 'args.probability'],
      ['fault', { kind: 'delay' }, 'args.ms'],
      ['fault', { kind: 'isolate', peers: [] }, 'args.peers'],
      ['fault', { kind: 'isolate', peers: [2, 'x'] }, 'args.peers[1]'],
      ['fault', { kind: 'explode' }, 'args.kind'],
      ['log', { limit: 0 }, 'args.limit'],
      ['campaign', { force: true }, 'args.force'],
      ['status', [], 'args'],
    ];
    for (const [command, args, field] of cases) {
      const r = failure(j({ type: 'command', id: 3, command, args }));
      expect(r.command, `${command} ${j(args)}`).toEqual({ id: 3, code: 'bad_args' });
      expect(r.error.field, `${command} ${j(args)}`).toBe(field);
    }
  });

  it('rejects non-JSON and non-objects', () => {
    expect(failure('{').error.message).toMatch(/not valid JSON/);
    expect(failure('[]').error).toEqual({ code: 'bad_frame', message: 'frame must be a JSON object' });
    expect(failure('"hello"').error.code).toBe('bad_frame');
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => j(v)),
        ),
        (text) => {
          const r = parseClientFrame(text);
          if (!r.ok) expect(r.error.code).toBe('bad_frame');
          parseNodeFrame(text);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('accepts every valid fault combination', () => {
    const fault = fc.oneof(
      fc.record({
        kind: fc.constant('drop' as const),
        probability: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      fc.record({ kind: fc.constant('delay' as const), ms: fc.integer({ min: 0, max: 600_000 }) }),
      fc.record({
        kind: fc.constant('isolate' as const),
        peers: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1 }),
      }),
      fc.record({ kind: fc.constant('heal' as const) }),
    );
    fc.assert(
      fc.property(
        fault,
        fc.option(fc.constantFrom('in' as const, 'out' as const), { nil: undefined }),
        (f, direction) => {
          const args = direction === undefined ? f : { ...f, direction };
          expect(parseCommandArgs('fault', args)).toEqual({ ok: true, args });
        },
      ),
    );
  });
});

describe('parseNodeFrame', () => {
  it('round-trips every node frame', () => {
    const frames = [
      {
        type: 'hello',
        version: 1,
        nodeId: 1,
        clusterId: 'c',
        members: [{ id: 1, address: 'h:1', learner: false }],
        allowFaults: true,
      },
      { type: 'state', state },
      { type: 'event', event: { seq: 1, at: 5, node: 1, kind: 'leader', leader: 2, term: 3 } },
      {
        type: 'event',
        event: {
          seq: 2,
          at: 5,
          node: 1,
          kind: 'ready',
          softState: { lead: 1, raftState: 'StateLeader' },
          entries: [{ term: 1, index: 1, type: 'EntryConfChangeV2', data: 'v1 v2' }],
          committed: [],
          messages: 0,
          mustSync: true,
          describe: 'Ready MustSync=true:\n',
        },
      },
      { type: 'lost', count: 12 },
      { type: 'result', id: 1, ok: true, value: { nested: [1, 'a', null] } },
      { type: 'result', id: 2, ok: false, error: { code: 'not_leader', message: 'm', leader: 3 } },
      { type: 'error', error: { code: 'bad_frame', message: 'x', field: 'state.everyMs' } },
    ];
    for (const f of frames) expect(parseNodeFrame(j(f))).toEqual({ ok: true, msg: f });
  });

  it('ignores keys it does not know (a newer node may add fields)', () => {
    const r = parseNodeFrame(j({ type: 'lost', count: 2, since: 7 }));
    expect(r).toEqual({ ok: true, msg: { type: 'lost', count: 2 } });
  });

  it('still checks the fields it knows', () => {
    const r = parseNodeFrame(j({ type: 'state', state: { ...state, role: 'king' } }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.field).toBe('state.role');
    const r2 = parseNodeFrame(j({ type: 'result', id: 1, ok: false, error: { code: 'oops', message: '' } }));
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.error.field).toBe('error.code');
  });
});

describe('batched frames', () => {
  const put = (id: number) => ({ type: 'command', id, command: 'put', args: { key: `k${id}`, value: 'v' } });

  it('parses each message of a client batch on its own, and a lone object as one', () => {
    const rs = parseClientFrames(j([put(1), { type: 'command', id: 2, command: 'reboot' }, put(3)]));
    expect(rs.map((r) => r.ok)).toEqual([true, false, true]);
    expect(rs[1]).toMatchObject({ ok: false, command: { id: 2, code: 'unknown_command' } });
    expect(rs[2]).toEqual({ ok: true, msg: put(3) });
    expect(parseClientFrames(j(put(4)))).toEqual([{ ok: true, msg: put(4) }]);
  });

  it('refuses bad JSON, an empty batch and an oversized one as a whole', () => {
    for (const text of ['[1,', '[]', j(Array.from({ length: MAX_BATCH_FRAMES + 1 }, () => put(1)))]) {
      const rs = parseClientFrames(text);
      expect(rs).toHaveLength(1);
      expect(rs[0]).toMatchObject({ ok: false, error: { code: 'bad_frame' } });
    }
  });

  it('checks command envelopes by hand exactly as strictly as the schema', () => {
    // An extra key, a negative or fractional id, a non-string command: the schema's errors.
    expect(failure(j({ ...put(1), extra: 1 })).error.field).toBe('extra');
    expect(failure(j({ ...put(1), id: -1 })).error.field).toBe('id');
    expect(failure(j({ ...put(1), id: 1.5 })).error.field).toBe('id');
    expect(failure(j({ ...put(1), command: 7 })).error.field).toBe('command');
  });

  it('takes a request id as clientId and seq together or not at all', () => {
    for (const command of ['put', 'delete', 'cas'] as const) {
      const base = { key: 'k', value: 'v', ...(command === 'cas' ? { expected: null } : {}) };
      const args = command === 'delete' ? { key: 'k' } : base;
      expect(parseCommandArgs(command, { ...args, clientId: 'c', seq: 1 }).ok).toBe(true);
      expect(parseCommandArgs(command, args).ok).toBe(true);
      // A seq alone would be numbered among the node's own requests and taken for an old retry.
      expect(parseCommandArgs(command, { ...args, seq: 5 })).toMatchObject({
        ok: false,
        field: 'args.clientId',
        message: expect.stringMatching(/give both or neither/),
      });
      expect(parseCommandArgs(command, { ...args, clientId: 'c' })).toMatchObject({
        ok: false,
        field: 'args.seq',
      });
    }
  });

  it('checks put arguments by hand exactly as the schema does', () => {
    // A valid put with one field replaced by a value near a bound the schema checks: empty,
    // over-long (4 KiB keys, in UTF-16 units and in UTF-8 bytes), 1,024-unit client ids,
    // seqs at 2^53, wrong types, unknown keys.
    const text = fc.oneof(
      fc.constantFrom('', 'k', 'é'.repeat(1366), 'é'.repeat(2049), 'x'.repeat(4096), 'x'.repeat(4097)),
      fc.constantFrom('c'.repeat(1024), 'c'.repeat(1025)),
      fc.string({ unit: 'grapheme', maxLength: 8 }),
    );
    const anyValue = fc.oneof(
      text,
      fc.constantFrom(0, 1, -1, 1.5, Number.MAX_SAFE_INTEGER, 2 ** 53, true, false, null),
    );
    const valid = fc.record(
      {
        key: fc.string({ minLength: 1, maxLength: 8 }),
        value: fc.string({ maxLength: 8 }),
        prevKv: fc.boolean(),
        clientId: fc.string({ minLength: 1, maxLength: 8 }),
        seq: fc.integer({ min: 1, max: 1000 }),
      },
      { requiredKeys: ['key', 'value'] },
    );
    const fields = fc.constantFrom('key', 'value', 'prevKv', 'clientId', 'seq', 'extra', 'none');
    fc.assert(
      fc.property(valid, fields, anyValue, (base, field, v) => {
        const a: Record<string, unknown> = field === 'none' ? base : { ...base, [field]: v };
        const bySchema = COMMAND_ARGS.put.safeParse(a);
        const got = parseCommandArgs('put', a);
        expect(got.ok).toBe(bySchema.success);
        if (got.ok && bySchema.success) expect(got.args).toEqual(bySchema.data);
      }),
      { numRuns: 3000 },
    );
  });

  it('parses node batches, checking successful results by hand', () => {
    const rs = parseNodeFrames(
      j([
        { type: 'result', id: 1, ok: true, value: null, extra: 'dropped' },
        { type: 'result', id: 2, ok: true },
        { type: 'result', id: -3, ok: true, value: 1 },
        { type: 'lost', count: 1 },
      ]),
    );
    expect(rs[0]).toEqual({ ok: true, msg: { type: 'result', id: 1, ok: true, value: null } });
    // Without a value, or with a bad id, the schema decides and names the field.
    expect(rs[1]).toMatchObject({ ok: false });
    expect(rs[2]).toMatchObject({ ok: false, error: { field: 'id' } });
    expect(rs[3]).toEqual({ ok: true, msg: { type: 'lost', count: 1 } });
    expect(parseNodeFrames('[]')).toMatchObject([{ ok: false, error: { code: 'bad_frame' } }]);
  });
});

describe('vocabulary', () => {
  it('matches the core and the documented lists', () => {
    expectTypeOf<(typeof ENTRY_TYPES)[number]>().toEqualTypeOf<EntryType>();
    expectTypeOf<NodeEvent['kind']>().toEqualTypeOf<EventKind>();
    expect(EVENT_KINDS).toHaveLength(9);
    expect(COMMAND_NAMES).toEqual(Object.keys(COMMAND_ARGS));
    expect(COMMAND_NAMES).toEqual([
      'campaign',
      'transfer',
      'forget-leader',
      'propose',
      'put',
      'get',
      'delete',
      'cas',
      'read-index',
      'member-add',
      'member-remove',
      'member-promote',
      'snapshot',
      'fault',
      'status',
      'members',
      'log',
    ]);
  });

  it('narrows command arguments by name', () => {
    const keyOf = (...[cmd, args]: CommandCall): string | undefined => {
      switch (cmd) {
        case 'put':
        case 'get':
        case 'delete':
        case 'cas':
          return args.key;
        default:
          return undefined;
      }
    };
    expect(keyOf('put', { key: 'a', value: 'b' })).toBe('a');
    expect(keyOf('status', {})).toBeUndefined();
  });
});
