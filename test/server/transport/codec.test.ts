import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ConfState,
  type Entry,
  LOCAL_APPEND_THREAD,
  LOCAL_APPLY_THREAD,
  MESSAGE_TYPES,
  type Message,
  message,
  type Snapshot,
} from '../../../src/raft/types.js';
import {
  decodeFrame,
  decodeSnapshotChunk,
  encodeFrame,
  encodeSnapshotChunk,
  FRAME_HEADER_BYTES,
  FrameError,
  frameMagic,
  MAX_RESPONSE_DEPTH,
  messageSize,
  SNAPSHOT_CHUNK_MAGIC,
  type SnapshotChunk,
} from '../../../src/server/transport/codec.js';

const u64 = fc.oneof(fc.nat(300), fc.nat(), fc.maxSafeNat(), fc.constant(Number.MAX_SAFE_INTEGER));
const id = fc.oneof(fc.nat(10), fc.maxSafeNat(), fc.constantFrom(LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD));
const bytes = fc.uint8Array({ maxLength: 40 });
const ids = fc.array(u64, { maxLength: 5 });

const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: u64,
  index: u64,
  type: fc.constantFrom('EntryNormal', 'EntryConfChange', 'EntryConfChangeV2'),
  data: bytes,
});

const confStateArb: fc.Arbitrary<ConfState> = fc.record({
  voters: ids,
  learners: ids,
  votersOutgoing: ids,
  learnersNext: ids,
  autoLeave: fc.boolean(),
});

const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  data: fc.uint8Array({ maxLength: 300 }),
  metadata: fc.record({ confState: confStateArb, index: u64, term: u64 }),
});

/** Messages whose responses nest at most `levels` deep (etcd nests one; the codec allows MAX_RESPONSE_DEPTH). */
function messageArb(levels: number): fc.Arbitrary<Message> {
  const responses: fc.Arbitrary<Message[]> =
    levels === 0 ? fc.constant([]) : fc.array(messageArb(levels - 1), { maxLength: 2 });
  return fc
    .record(
      {
        type: fc.constantFrom(...MESSAGE_TYPES),
        to: id,
        from: id,
        term: u64,
        logTerm: u64,
        index: u64,
        entries: fc.array(entryArb, { maxLength: 4 }),
        commit: u64,
        vote: u64,
        snapshot: snapshotArb,
        reject: fc.boolean(),
        rejectHint: u64,
        context: bytes,
        responses,
      },
      {
        requiredKeys: [
          'type',
          'to',
          'from',
          'term',
          'logTerm',
          'index',
          'entries',
          'commit',
          'vote',
          'reject',
          'rejectHint',
          'context',
          'responses',
        ],
      },
    )
    .map((m): Message => m);
}

// Mostly shallow batches, sometimes as deep as the codec allows.
const framesArb = fc.oneof(
  { arbitrary: fc.array(messageArb(1), { maxLength: 6 }), weight: 4 },
  { arbitrary: fc.array(messageArb(MAX_RESPONSE_DEPTH), { maxLength: 2 }), weight: 1 },
);

const params = { numRuns: 300 };

/** Why `decode` refuses `buf`: it must throw a FrameError. */
function refusal(decode: (buf: Uint8Array) => unknown, buf: Uint8Array): string {
  try {
    decode(buf);
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return (err as FrameError).reason;
  }
  throw new Error('decoded');
}

describe('codec round trip', () => {
  it('decodes what it encodes, for random batches incl. snapshots and nested responses', () => {
    fc.assert(
      fc.property(framesArb, (msgs) => {
        const frame = encodeFrame(msgs);
        expect(frame.length).toBe(FRAME_HEADER_BYTES + msgs.reduce((n, m) => n + messageSize(m), 0));
        expect(decodeFrame(frame)).toEqual(msgs);
      }),
      params,
    );
  });

  it('maps local thread ids to etcd u64 values and back', () => {
    const m = message({ type: 'MsgStorageAppend', to: LOCAL_APPEND_THREAD, from: 1 });
    const r = message({ type: 'MsgStorageApplyResp', to: 1, from: LOCAL_APPLY_THREAD });
    m.responses = [r];
    const frame = encodeFrame([m]);
    // type, flags, then `to` as 2^64-1: 0xff×9, 0x01.
    expect([...frame.subarray(10, 20)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    const [back] = decodeFrame(frame);
    expect(back!.to).toBe(LOCAL_APPEND_THREAD);
    expect(back!.responses[0]!.from).toBe(LOCAL_APPLY_THREAD);
  });

  it('keeps a heartbeat small', () => {
    const hb = message({ type: 'MsgHeartbeat', to: 2, from: 1, term: 7, commit: 1234 });
    // type+flags, seven one-byte varints, commit in two bytes.
    expect(encodeFrame([hb]).length).toBe(FRAME_HEADER_BYTES + 2 + 7 + 2);
  });

  it('refuses to encode what it cannot represent', () => {
    expect(() => encodeFrame([message({ type: 'MsgApp', term: -1 })])).toThrow(RangeError);
    expect(() => encodeFrame([message({ type: 'MsgApp', index: 1.5 })])).toThrow(RangeError);
    expect(() => encodeFrame([message({ type: 'MsgNope' as never })])).toThrow(RangeError);
  });
});

describe('codec validation', () => {
  const sample = (): Uint8Array => {
    const m = message({
      type: 'MsgApp',
      to: 2,
      from: 1,
      term: 3,
      index: 10,
      entries: [{ term: 3, index: 11, type: 'EntryNormal', data: new Uint8Array([1, 2, 3]) }],
      context: new Uint8Array([9]),
    });
    return encodeFrame([m, message({ type: 'MsgHeartbeat', to: 2, from: 1 })]);
  };

  const reason = (buf: Uint8Array): string => refusal(decodeFrame, buf);

  it('rejects every truncation of a valid frame with FrameError', () => {
    fc.assert(
      fc.property(
        framesArb.filter((ms) => ms.length > 0),
        (msgs) => {
          const frame = encodeFrame(msgs);
          for (let cut = 0; cut < frame.length; cut++) {
            expect(() => decodeFrame(frame.subarray(0, cut))).toThrow(FrameError);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('throws only FrameError on random bytes and bit flips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        try {
          decodeFrame(junk);
        } catch (err) {
          expect(err).toBeInstanceOf(FrameError);
        }
      }),
      params,
    );
    fc.assert(
      fc.property(framesArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (msgs, at, bit) => {
        const frame = Uint8Array.from(encodeFrame(msgs));
        const i = at % frame.length;
        frame[i] = frame[i]! ^ (1 << bit);
        try {
          decodeFrame(frame);
        } catch (err) {
          expect(err).toBeInstanceOf(FrameError);
        }
      }),
      params,
    );
  });

  it('names what is wrong', () => {
    const good = sample();
    expect(reason(new Uint8Array(3))).toMatch(/no header/);
    const badMagic = Uint8Array.from(good);
    badMagic[0] = 0;
    expect(reason(badMagic)).toMatch(/bad magic/);
    const badType = Uint8Array.from(good);
    badType[FRAME_HEADER_BYTES] = MESSAGE_TYPES.length;
    expect(reason(badType)).toMatch(/unknown message type 24/);
    const badFlags = Uint8Array.from(good);
    badFlags[FRAME_HEADER_BYTES + 1] = 0x80;
    expect(reason(badFlags)).toMatch(/unknown message flags 0x80/);
    const trailing = new Uint8Array(good.length + 2);
    trailing.set(good);
    expect(reason(trailing)).toMatch(/2 trailing bytes/);
    const hugeCount = Uint8Array.from(good);
    new DataView(hugeCount.buffer).setUint32(4, 1_000_000);
    expect(reason(hugeCount)).toMatch(/message count 1000000 does not fit/);
    expect(reason(good.subarray(0, good.length - 3))).toMatch(/truncated/);
  });

  it('rejects u64 values a JS number cannot hold, other than the local thread ids', () => {
    // A heartbeat whose term is 2^53 (varint 0x80×7, 0x10).
    const head = [0x52, 0x46, 0x54, 0x01, 0, 0, 0, 1, 8, 0, 2, 1];
    const term = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    expect(reason(Uint8Array.from([...head, ...term, 0, 0, 0, 0, 0]))).toMatch(/term: value exceeds 2\^53-1/);
    // 2^64-1 is only meaningful as an id.
    const max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    expect(reason(Uint8Array.from([...head, ...max, 0, 0, 0, 0, 0]))).toMatch(/term: value exceeds/);
    const overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    expect(reason(Uint8Array.from([...head, ...overflow, 0, 0, 0, 0, 0]))).toMatch(/overflows 64 bits/);
  });

  it('bounds response nesting', () => {
    let m = message({ type: 'MsgStorageAppendResp' });
    for (let i = 0; i <= MAX_RESPONSE_DEPTH; i++) m = message({ type: 'MsgStorageAppend', responses: [m] });
    expect(() => encodeFrame([m])).toThrow(/nested deeper/);
  });

  it('returns payload views into the frame, and empty payloads without a view', () => {
    const frame = sample();
    const [app, hb] = decodeFrame(frame);
    expect(app!.entries[0]!.data.buffer).toBe(frame.buffer);
    expect(hb!.context.length).toBe(0);
    expect(hb!.entries).toEqual([]);
    expect(hb!.snapshot).toBeUndefined();
  });
});

describe('snapshot chunk frames', () => {
  /** The MsgSnap a last chunk carries: the snapshot's metadata, its data left empty. */
  const header = (snapshot: Snapshot): Message =>
    message({ type: 'MsgSnap', from: 1, to: 2, term: 4, snapshot: { ...snapshot, data: new Uint8Array(0) } });

  const chunkArb: fc.Arbitrary<SnapshotChunk> = fc
    .record({
      transfer: u64,
      before: fc.nat(1000),
      after: fc.nat(1000),
      data: fc.uint8Array({ maxLength: 300 }),
      snapshot: fc.option(snapshotArb, { nil: undefined }),
    })
    .map(({ transfer, before, after, data, snapshot }) => ({
      transfer,
      total: before + data.length + after,
      offset: before,
      data,
      message: snapshot === undefined ? undefined : header(snapshot),
    }));

  const reason = (buf: Uint8Array): string => refusal(decodeSnapshotChunk, buf);

  it('decodes what it encodes, and refuses every truncation with FrameError', () => {
    fc.assert(
      fc.property(chunkArb, (c) => {
        const frame = encodeSnapshotChunk(c);
        expect(frameMagic(frame)).toBe(SNAPSHOT_CHUNK_MAGIC);
        const back = decodeSnapshotChunk(frame);
        expect({ ...back, data: [...back.data] }).toEqual({ ...c, data: [...c.data] });
        for (let cut = 0; cut < frame.length; cut++) {
          expect(() => decodeSnapshotChunk(frame.subarray(0, cut))).toThrow(FrameError);
        }
        // A chunk is not a message frame, nor the other way round.
        expect(() => decodeFrame(frame)).toThrow(FrameError);
      }),
      params,
    );
    expect(reason(encodeFrame([message({ type: 'MsgHeartbeat', to: 2, from: 1 })]))).toBe(
      'not a snapshot chunk',
    );
  });

  it('refuses a chunk past the snapshot, a bad last flag, a last message that is no MsgSnap without data, trailing bytes', () => {
    const snapshot: Snapshot = {
      data: new Uint8Array(0),
      metadata: {
        index: 9,
        term: 4,
        confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    };
    const ok = { transfer: 1, total: 10, offset: 4, data: new Uint8Array(6), message: header(snapshot) };
    expect(decodeSnapshotChunk(encodeSnapshotChunk(ok)).message?.snapshot?.metadata.index).toBe(9);
    expect(reason(encodeSnapshotChunk({ ...ok, total: 9 }))).toBe(
      "chunk of 6 bytes at 4 overruns the snapshot's 9",
    );
    const frame = encodeSnapshotChunk({ ...ok, message: undefined });
    // The last flag is the frame's final byte when no message follows.
    frame[frame.length - 1] = 2;
    expect(reason(frame)).toBe('last flag 2 is neither 0 nor 1');
    expect(
      reason(Buffer.concat([encodeSnapshotChunk({ ...ok, message: undefined }), Buffer.from([0])])),
    ).toBe('1 trailing bytes after the chunk');
    // The encoder refuses what the decoder would: a last message that is not a MsgSnap
    // without data. Written by hand here, a heartbeat in its place is refused on decoding.
    expect(() =>
      encodeSnapshotChunk({ ...ok, message: message({ type: 'MsgHeartbeat', to: 2, from: 1 }) }),
    ).toThrow(RangeError);
    const withData = { ...header(snapshot), snapshot: { ...snapshot, data: new Uint8Array(1) } };
    expect(() => encodeSnapshotChunk({ ...ok, message: withData })).toThrow(RangeError);
    const hbFrame = encodeFrame([message({ type: 'MsgHeartbeat', to: 2, from: 1 })]);
    const lastWithHeartbeat = Buffer.concat([
      encodeSnapshotChunk({ ...ok, message: undefined }).subarray(0, frame.length - 1),
      Buffer.from([1]),
      hbFrame.subarray(FRAME_HEADER_BYTES),
    ]);
    expect(reason(lastWithHeartbeat)).toBe('the last chunk carries MsgHeartbeat, not a MsgSnap without data');
  });
});
