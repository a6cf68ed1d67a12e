import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareKeys,
  decodeKvCommand,
  decodeKvEntryData,
  decodeMemberContext,
  describeKvData,
  encodeCapture,
  encodeKvBatch,
  encodeKvCommand,
  encodeKvPutBytes,
  encodeMemberContext,
  KvCodecError,
  type KvCommand,
  type KvResult,
  KvStore,
  kvCommandCount,
  MAX_BATCH_COMMANDS,
  requestKey,
  snapshotWriterSize,
} from '../../src/server/kv.js';

const put = (clientId: string, seq: number, key: string, value: string): KvCommand => ({
  op: 'put',
  clientId,
  seq,
  key,
  value,
});
const del = (clientId: string, seq: number, key: string): KvCommand => ({ op: 'delete', clientId, seq, key });
const cas = (
  clientId: string,
  seq: number,
  key: string,
  expected: string | null,
  value: string,
): KvCommand => ({
  op: 'cas',
  clientId,
  seq,
  key,
  expected,
  value,
});

/** Applies one entry's data; what the store reported for its (single) command, if anything. */
function applyOne(
  kv: KvStore,
  index: number,
  data: Uint8Array,
): { clientId: string; seq: number; result: KvResult } | undefined {
  const heard: { clientId: string; seq: number; result: KvResult }[] = [];
  kv.apply(index, data, (clientId, seq, result) => heard.push({ clientId, seq, result }));
  expect(heard.length).toBeLessThanOrEqual(1);
  return heard[0];
}

/** Applies commands at consecutive indexes starting at `from`; returns each result. */
function applyAll(kv: KvStore, cmds: KvCommand[], from = 1): (KvResult | undefined)[] {
  return cmds.map((c, i) => applyOne(kv, from + i, encodeKvCommand(c))?.result);
}

function expectCodecError(f: () => unknown, pattern?: RegExp): void {
  let thrown: unknown;
  try {
    f();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(KvCodecError);
  if (pattern) expect((thrown as Error).message).toMatch(pattern);
}

describe('KvStore semantics', () => {
  it('put creates, updates (version, mod revision) and returns the previous entry', () => {
    const kv = new KvStore();
    const r1 = applyOne(kv, 5, encodeKvCommand(put('c', 1, 'a', 'x')));
    expect(r1).toEqual({ clientId: 'c', seq: 1, result: { op: 'put', revision: 5 } });
    expect(kv.get('a')).toEqual({ key: 'a', value: 'x', createRevision: 5, modRevision: 5, version: 1 });
    const r2 = applyOne(kv, 7, encodeKvCommand(put('c', 2, 'a', 'y')));
    expect(r2?.result).toEqual({
      op: 'put',
      revision: 7,
      prev: { key: 'a', value: 'x', createRevision: 5, modRevision: 5, version: 1 },
    });
    expect(kv.get('a')).toEqual({ key: 'a', value: 'y', createRevision: 5, modRevision: 7, version: 2 });
    expect(kv.revision).toBe(7);
    expect(kv.size).toBe(1);
  });

  it('a put or delete with prevKv false leaves the replaced entry out of its result, and so out of the session', () => {
    const kv = new KvStore();
    applyAll(kv, [put('c', 1, 'k', 'first')]);
    const quiet = applyOne(
      kv,
      2,
      encodeKvCommand({ op: 'put', clientId: 'c', seq: 2, key: 'k', value: 'second', prevKv: false }),
    );
    expect(quiet?.result).toEqual({ op: 'put', revision: 2 });
    expect(kv.get('k')).toMatchObject({ value: 'second', version: 2 });
    // A retry gets the same result, without the previous entry.
    expect(applyOne(kv, 3, encodeKvCommand(put('c', 2, 'k', 'second')))?.result).toEqual({
      op: 'put',
      revision: 2,
    });
    const gone = applyOne(
      kv,
      4,
      encodeKvCommand({ op: 'delete', clientId: 'c', seq: 3, key: 'k', prevKv: false }),
    );
    expect(gone?.result).toEqual({ op: 'delete', revision: 4, deleted: 1 });
    expect(kv.get('k')).toBeUndefined();
    // Without the flag, as entries written before it existed: the previous entry is kept.
    applyAll(kv, [put('c', 4, 'k', 'again')], 5);
    expect(applyOne(kv, 6, encodeKvCommand(del('c', 5, 'k')))?.result).toMatchObject({
      prev: { value: 'again' },
    });
    expectCodecError(
      () => encodeKvCommand({ ...put('c', 6, 'k', 'v'), prevKv: true } as unknown as KvCommand),
      /prevKv/,
    );
  });

  it('delete removes a key; a later put starts a new generation', () => {
    const kv = new KvStore();
    applyAll(kv, [put('c', 1, 'a', 'x'), put('c', 2, 'a', 'y')]);
    const d = applyOne(kv, 3, encodeKvCommand(del('c', 3, 'a')))!.result;
    expect(d).toEqual({
      op: 'delete',
      revision: 3,
      deleted: 1,
      prev: { key: 'a', value: 'y', createRevision: 1, modRevision: 2, version: 2 },
    });
    expect(kv.get('a')).toBeUndefined();
    expect(kv.size).toBe(0);
    expect(applyOne(kv, 4, encodeKvCommand(del('c', 4, 'a')))!.result).toEqual({
      op: 'delete',
      revision: 4,
      deleted: 0,
    });
    applyOne(kv, 5, encodeKvCommand(put('c', 5, 'a', 'z')));
    expect(kv.get('a')).toEqual({ key: 'a', value: 'z', createRevision: 5, modRevision: 5, version: 1 });
  });

  it('cas compares against a value or absence and reports the key after the operation', () => {
    const kv = new KvStore();
    const [create, again] = applyAll(kv, [cas('c', 1, 'k', null, 'v1'), cas('c', 2, 'k', null, 'v2')]);
    expect(create).toEqual({
      op: 'cas',
      revision: 1,
      ok: true,
      current: { key: 'k', value: 'v1', createRevision: 1, modRevision: 1, version: 1 },
    });
    expect(again).toEqual({
      op: 'cas',
      revision: 2,
      ok: false,
      current: { key: 'k', value: 'v1', createRevision: 1, modRevision: 1, version: 1 },
    });
    const [wrong, right] = applyAll(kv, [cas('c', 3, 'k', 'nope', 'x'), cas('c', 4, 'k', 'v1', 'v3')], 3);
    expect(wrong).toMatchObject({ ok: false, current: { value: 'v1' } });
    expect(right).toMatchObject({ ok: true, current: { value: 'v3', version: 2, modRevision: 4 } });
    const [missing] = applyAll(kv, [cas('c', 5, 'other', 'v', 'x')], 5);
    expect(missing).toEqual({ op: 'cas', revision: 5, ok: false });
    expect(kv.get('other')).toBeUndefined();
  });

  it('range follows etcd: single key, [key, end), "\\0" to the end, limit', () => {
    const kv = new KvStore();
    applyAll(
      kv,
      ['b', 'a', 'c', 'ab', 'd'].map((k, i) => put('c', i + 1, k, k.toUpperCase())),
    );
    const keys = (es: { key: string }[]) => es.map((e) => e.key);
    expect(keys(kv.range('a'))).toEqual(['a']);
    expect(keys(kv.range('zz'))).toEqual([]);
    expect(keys(kv.range('a', 'c'))).toEqual(['a', 'ab', 'b']);
    expect(keys(kv.range('a', 'b'))).toEqual(['a', 'ab']);
    expect(keys(kv.range('b', '\0'))).toEqual(['b', 'c', 'd']);
    expect(keys(kv.range('\0', '\0'))).toEqual(['a', 'ab', 'b', 'c', 'd']);
    expect(keys(kv.range('a', '\0', 2))).toEqual(['a', 'ab']);
    expect(keys(kv.range('a', '', 0))).toEqual(['a']);
  });

  it('orders keys by UTF-8 bytes (code points), not UTF-16 units', () => {
    const astral = '\u{1F600}'; // a surrogate pair in UTF-16, F0 9F 98 80 in UTF-8
    const high = '\uFF21'; // EF BC A1 in UTF-8: sorts before the astral key
    expect(compareKeys(high, astral)).toBeLessThan(0);
    expect(compareKeys('a', 'ab')).toBeLessThan(0);
    expect(compareKeys('b', 'ab')).toBeGreaterThan(0);
    const kv = new KvStore();
    applyAll(kv, [put('c', 1, astral, '1'), put('c', 2, high, '2'), put('c', 3, 'z', '3')]);
    expect(kv.range('\0', '\0').map((e) => e.key)).toEqual(['z', high, astral]);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        const bytes = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
        expect(Math.sign(compareKeys(a, b))).toBe(bytes);
      }),
    );
  });

  it('members are set and removed', () => {
    const kv = new KvStore();
    kv.setMember(2, 'h2:1', false);
    kv.setMember(1, 'h1:1', true);
    kv.setMember(1, 'h1:2', false);
    kv.removeMember(2);
    expect([...kv.members]).toEqual([[1, { address: 'h1:2', learner: false }]]);
    // A removed id stays known as removed (peers refuse it), unless a later change adds it.
    expect([kv.isRemoved(2), kv.isRemoved(1), kv.isRemoved(3)]).toEqual([true, false, false]);
    kv.setMember(2, 'h2:2', false);
    expect(kv.isRemoved(2)).toBe(false);
  });

  it('apply ignores empty data and throws KvCodecError for garbage without changing anything', () => {
    const kv = new KvStore();
    applyAll(kv, [put('c', 1, 'a', 'x')]);
    const before = kv.snapshot();
    expect(applyOne(kv, 2, new Uint8Array())).toBeUndefined();
    expectCodecError(() => applyOne(kv, 3, new Uint8Array([1, 9, 9, 9])));
    expect(kv.snapshot()).toEqual(before);
    expect(kv.revision).toBe(1);
  });
});

describe('KV capture', () => {
  it("starts a snapshot's encoding in room for all of it, estimated from the store when no hint is given", async () => {
    const kv = new KvStore();
    const cmds: KvCommand[] = [];
    // 3,000 keys whose values grow with their place in key order: a sample from one end
    // alone would be far off.
    for (let i = 0; i < 3000; i++)
      cmds.push(put('c1', i + 1, `key/${String(i).padStart(5, '0')}`, 'v'.repeat(i)));
    applyAll(kv, cmds);
    const state = kv.capture();
    const start = snapshotWriterSize(state, 0);
    const encoded = await encodeCapture(kv.capture());
    // Enough room (the writer never grows by doubling from 64 KiB), and not much more.
    expect(start).toBeGreaterThanOrEqual(encoded.length);
    expect(start).toBeLessThan(encoded.length * 1.3);
    // A larger hint (the last snapshot's size) wins; an empty store gets the minimum.
    expect(snapshotWriterSize(state, 10 * encoded.length)).toBe(Math.ceil(10 * encoded.length * 1.1));
    state.release();
    expect(snapshotWriterSize(new KvStore().capture(), 0)).toBe(64 * 1024);
  });

  it('encodes in slices to the same bytes as snapshot(), and as of the capture despite later writes', async () => {
    const kv = new KvStore();
    kv.setMember(1, 'h1:1', false);
    const cmds: KvCommand[] = [];
    for (let i = 0; i < 50; i++) cmds.push(put(`c${i % 3}`, Math.floor(i / 3) + 1, `k${i % 17}`, `v${i}`));
    cmds.push(del('c0', 99, 'k3'), cas('c1', 99, 'k4', null, 'new'));
    applyAll(kv, cmds);
    const expected = kv.snapshot();
    const state = kv.capture();
    // Writes, a delete, a new session and a member change after the capture.
    applyAll(kv, [put('c9', 1, 'k1', 'later'), del('c0', 100, 'k5'), put('c0', 101, 'zz', 'new')], 100);
    kv.setMember(2, 'h2:1', true);
    expect(await encodeCapture(state, 3)).toEqual(expected);
    const restored = new KvStore();
    restored.restore(expected);
    expect(restored.get('k1')?.value).not.toBe('later');
    expect(restored.get('k5')).toBeDefined();
    expect(restored.snapshot()).toEqual(expected);
  });
});

describe('KV restore in slices', () => {
  /** A store of `keys` keys of `valueBytes`-character values, and its snapshot. */
  function storeOf(keys: number, valueBytes: number, tag: string): { kv: KvStore; bytes: Uint8Array } {
    const kv = new KvStore();
    kv.setMember(1, 'h1:1', false);
    const cmds: KvCommand[] = [];
    for (let i = 0; i < keys; i++) cmds.push(put(tag, i + 1, `k${i}`, `${tag}${'v'.repeat(valueBytes)}`));
    applyAll(kv, cmds);
    return { kv, bytes: kv.snapshot() };
  }

  /** Runs restoreSliced, counting the event-loop turns it hands back and checking reads meanwhile. */
  async function restoreCountingTurns(
    kv: KvStore,
    bytes: Uint8Array,
    duringEachTurn: () => void,
  ): Promise<number> {
    let turns = 0;
    let done = false;
    const restoring = kv.restoreSliced(bytes).finally(() => {
      done = true;
    });
    while (!done) {
      await new Promise((r) => setImmediate(r));
      if (done) break;
      turns++;
      duringEachTurn();
    }
    await restoring;
    return turns;
  }

  it('installs the same state as restore(), serving the old one until then and handing the loop back between slices', async () => {
    const { bytes } = storeOf(10_000, 16, 'new');
    const kv = storeOf(3, 4, 'old').kv;
    const turns = await restoreCountingTurns(kv, bytes, () => {
      // Until the end the store is whole and unchanged.
      expect(kv.get('k0')?.value).toBe('oldvvvv');
      expect(kv.get('k5000')).toBeUndefined();
    });
    // 10,000 entries in slices of at most 2,048: five slices, the loop seen between each two
    // (the last turn is the one that installs).
    expect(turns).toBeGreaterThanOrEqual(3);
    const plain = new KvStore();
    plain.restore(bytes);
    const installed = Buffer.from(kv.snapshot());
    expect(installed.equals(plain.snapshot())).toBe(true);
    expect(installed.equals(bytes)).toBe(true);
    expect(kv.get('k5000')?.value).toBe(`new${'v'.repeat(16)}`);
  });

  it('cuts slices by bytes too: a few large values are not decoded in one go', async () => {
    // 40 values of 256 KiB: 10 MiB in well under 2,048 entries.
    const { bytes } = storeOf(40, 256 * 1024, 'big');
    const kv = new KvStore();
    expect(await restoreCountingTurns(kv, bytes, () => undefined)).toBeGreaterThanOrEqual(8);
    // (toEqual walks 10 MiB an element at a time.)
    expect(Buffer.from(kv.snapshot()).equals(bytes)).toBe(true);
  });

  it('changes nothing when the snapshot turns out bad partway', async () => {
    const { kv, bytes: before } = storeOf(5, 4, 'old');
    const { bytes } = storeOf(5000, 8, 'new');
    await expect(kv.restoreSliced(bytes.subarray(0, bytes.length - 3))).rejects.toThrow(KvCodecError);
    expect(kv.snapshot()).toEqual(before);
  });

  it('refuses to install over writes made while it decoded', async () => {
    const { kv } = storeOf(5, 4, 'old');
    const { bytes } = storeOf(5000, 8, 'new');
    const restoring = kv.restoreSliced(bytes);
    await new Promise((r) => setImmediate(r));
    applyAll(kv, [put('late', 1, 'k1', 'late')], 100);
    await expect(restoring).rejects.toThrow(/written while a snapshot was restored/);
    expect(kv.get('k1')?.value).toBe('late');
  });
});

describe('KV capture while the store keeps changing', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('put' as const), key: fc.integer({ min: 0, max: 9 }), value: fc.string() }),
    fc.record({ kind: fc.constant('del' as const), key: fc.integer({ min: 0, max: 9 }) }),
  );
  const toCommand = (o: { kind: 'put' | 'del'; key: number; value?: string }, seq: number): KvCommand =>
    o.kind === 'put' ? put('w', seq, `k${o.key}`, o.value ?? '') : del('w', seq, `k${o.key}`);

  it('encodes the state at the capture while writes, deletes and re-creations land between its slices', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { maxLength: 30 }),
        fc.array(op, { maxLength: 30 }),
        async (before, after) => {
          const kv = new KvStore();
          let seq = 0;
          applyAll(
            kv,
            before.map((o) => toCommand(o, ++seq)),
          );
          const expected = kv.snapshot();
          const state = kv.capture();
          // Slices of 2 entries: the encoder and the writes below take turns on the event loop.
          const encoded = encodeCapture(state, 2);
          for (const o of after) {
            await new Promise((r) => setImmediate(r));
            applyOne(kv, seq + 1, encodeKvCommand(toCommand(o, ++seq)));
          }
          expect(await encoded).toEqual(expected);
          // Released: a later capture sees the later state.
          expect(await encodeCapture(kv.capture(), 2)).toEqual(kv.snapshot());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps two overlapping captures apart, and both through a restore and the writes after it', async () => {
    const kv = new KvStore();
    applyAll(kv, [put('c', 1, 'a', '1'), put('c', 2, 'b', '1'), put('c', 3, 'c', '1')]);
    const atFirst = kv.snapshot();
    const first = kv.capture();
    applyAll(kv, [put('c', 4, 'a', '2'), del('c', 5, 'b')], 4);
    const atSecond = kv.snapshot();
    const second = kv.capture();
    applyAll(kv, [put('c', 6, 'a', '3'), put('c', 7, 'b', '3')], 6);
    // A restore that fails changes nothing: the captures still need the old entries of keys
    // written after it.
    expect(() => kv.restore(new Uint8Array([1, 2, 3]))).toThrow(KvCodecError);
    applyAll(kv, [put('c', 8, 'c', '2')], 8);
    // A snapshot from the leader replaces the whole state while both are being encoded;
    // the new state's writes (to keys the captures hold unchanged, too) are not theirs.
    const other = new KvStore();
    applyAll(other, [put('x', 1, 'c', 'leader'), put('x', 2, 'a', 'leader')]);
    kv.restore(other.snapshot());
    applyAll(kv, [put('x', 3, 'c', 'after'), del('x', 4, 'a')], 9);
    expect(await encodeCapture(second, 1)).toEqual(atSecond);
    expect(await encodeCapture(first, 1)).toEqual(atFirst);
    expect(kv.get('c')?.value).toBe('after');
  });
});

describe('KV command codec', () => {
  const text = fc.string({ unit: 'grapheme', maxLength: 20 });
  const nonEmpty = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 });
  const seq = fc.oneof(
    fc.integer({ min: 1, max: 1000 }),
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  );
  const command: fc.Arbitrary<KvCommand> = fc.oneof(
    fc.record({ op: fc.constant('put' as const), clientId: nonEmpty, seq, key: nonEmpty, value: text }),
    fc.record({
      op: fc.constant('put' as const),
      clientId: nonEmpty,
      seq,
      key: nonEmpty,
      value: text,
      prevKv: fc.constant(false as const),
    }),
    fc.record({ op: fc.constant('delete' as const), clientId: nonEmpty, seq, key: nonEmpty }),
    fc.record({
      op: fc.constant('delete' as const),
      clientId: nonEmpty,
      seq,
      key: nonEmpty,
      prevKv: fc.constant(false as const),
    }),
    fc.record({
      op: fc.constant('cas' as const),
      clientId: nonEmpty,
      seq,
      key: nonEmpty,
      expected: fc.option(text, { nil: null }),
      value: text,
    }),
  );

  it('round-trips any command', () => {
    fc.assert(
      fc.property(command, (c) => {
        expect(decodeKvCommand(encodeKvCommand(c))).toEqual(c);
      }),
    );
  });

  it("encodes a put from its key's and value's bytes exactly as from the strings", () => {
    const utf8 = (t: string) => new TextEncoder().encode(t);
    fc.assert(
      fc.property(nonEmpty, seq, nonEmpty, text, (clientId, n, key, value) => {
        const fromBytes = encodeKvPutBytes(clientId, n, utf8(key), utf8(value));
        expect(fromBytes).toEqual(
          encodeKvCommand({ op: 'put', clientId, seq: n, key, value, prevKv: false }),
        );
        expect(decodeKvCommand(fromBytes)).toEqual({
          op: 'put',
          clientId,
          seq: n,
          key,
          value,
          prevKv: false,
        });
      }),
    );
    expect(() => encodeKvPutBytes('c', 1, new Uint8Array(0), utf8('v'))).toThrow(KvCodecError);
  });

  it('keeps every encoded command intact while later ones are encoded (shared buffers)', () => {
    // Enough commands to fill several of the encoder's shared buffers, and one too large
    // to share one; each is checked after all of them were encoded.
    const cmds = Array.from({ length: 2000 }, (_, i) =>
      put(
        `c${i % 7}`,
        i + 1,
        `key-${i}`,
        String.fromCharCode(97 + (i % 26)).repeat(i === 999 ? 20_000 : 300),
      ),
    );
    const encoded = cmds.map(encodeKvCommand);
    for (const [i, bytes] of encoded.entries())
      expect(decodeKvCommand(bytes), `command ${i}`).toEqual(cmds[i]);
    // Small commands share buffers (the point: no ArrayBuffer per proposal); the large one has its own.
    expect(new Set(encoded.map((b) => b.buffer)).size).toBeLessThan(encoded.length / 100);
    expect(encoded[999]!.buffer.byteLength).toBe(encoded[999]!.length);
  });

  it('keeps a leading BOM and other unusual text intact', () => {
    const c = put('\uFEFFclient', 1, '\uFEFF\0key', '\u{10FFFF}');
    expect(decodeKvCommand(encodeKvCommand(c))).toEqual(c);
  });

  it('keeps a stored U+FFFD and refuses bytes that only decode to one', () => {
    // Text is decoded leniently and checked for U+FFFD: an encoded U+FFFD is valid text,
    // while malformed bytes (which a lenient decoder also turns into U+FFFD) are refused.
    const c = put('client', 1, 'k\uFFFD', `${'v'.repeat(300)}\uFFFD`);
    expect(decodeKvCommand(encodeKvCommand(c))).toEqual(c);
    const bytes = encodeKvCommand(put('client', 1, 'key', 'v'.repeat(300)));
    for (const malformed of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff], [0xe2, 0x82]]) {
      const bad = Uint8Array.from(bytes);
      bad.set(malformed, bytes.length - 10);
      expectCodecError(() => decodeKvCommand(bad), /value: invalid UTF-8/);
    }
  });

  it('does not use JSON', () => {
    const bytes = encodeKvCommand(put('client', 1, 'key', 'value'));
    expect(bytes[0]).toBe(1);
    expect(Buffer.from(bytes).toString('latin1')).not.toMatch(/[{}"]/);
    expect(bytes.length).toBeLessThan(25);
  });

  it('refuses every truncation of a valid command', () => {
    fc.assert(
      fc.property(command, (c) => {
        const bytes = encodeKvCommand(c);
        for (let n = 0; n < bytes.length; n++) expectCodecError(() => decodeKvCommand(bytes.subarray(0, n)));
      }),
      { numRuns: 200 },
    );
  });

  it('garbage either fails with KvCodecError or is a canonical encoding', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        let cmd: KvCommand;
        try {
          cmd = decodeKvCommand(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(KvCodecError);
          return;
        }
        expect(encodeKvCommand(cmd)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
    // Mostly-valid input with one corrupted byte exercises the deeper checks.
    fc.assert(
      fc.property(command, fc.nat(), fc.integer({ min: 0, max: 255 }), (c, at, b) => {
        const bytes = encodeKvCommand(c).slice();
        bytes[at % bytes.length] = b;
        try {
          expect(encodeKvCommand(decodeKvCommand(bytes))).toEqual(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(KvCodecError);
        }
      }),
    );
  });

  it('names specific problems', () => {
    const good = encodeKvCommand(put('c', 1, 'k', 'v'));
    expectCodecError(() => decodeKvCommand(new Uint8Array([2, ...good.subarray(1)])), /version 2/);
    expectCodecError(() => decodeKvCommand(new Uint8Array([1, 7, ...good.subarray(2)])), /unknown op 7/);
    expectCodecError(() => decodeKvCommand(new Uint8Array([...good, 0])), /1 trailing bytes/);
    // clientId of one byte 0xff: not UTF-8.
    expectCodecError(
      () => decodeKvCommand(new Uint8Array([1, 1, 1, 0xff, 1, 1, 0x6b, 0])),
      /clientId: invalid UTF-8/,
    );
    // seq as a padded varint (0x81 0x00) and as a varint longer than 8 bytes.
    expectCodecError(
      () => decodeKvCommand(new Uint8Array([1, 1, 1, 0x63, 0x81, 0, 1, 0x6b, 0])),
      /non-canonical/,
    );
    expectCodecError(
      () => decodeKvCommand(new Uint8Array([1, 1, 1, 0x63, ...new Array(9).fill(0xff), 1])),
      /too long|exceeds/,
    );
    expectCodecError(
      () => decodeKvCommand(new Uint8Array([1, 1, 1, 0x63, 0, 1, 0x6b, 0])),
      /seq must be at least 1/,
    );
    expectCodecError(() => decodeKvCommand(new Uint8Array([1, 1, 1, 0x63, 1, 0, 0])), /empty key/);
    // A key length larger than what follows.
    expectCodecError(() => decodeKvCommand(new Uint8Array([1, 1, 1, 0x63, 1, 50, 0x6b])), /key: truncated/);
    // cas with an "expected present" flag of 2.
    expectCodecError(() => decodeKvCommand(new Uint8Array([1, 3, 1, 0x63, 1, 1, 0x6b, 2, 0])), /flag/);
  });

  it('refuses to encode what it could not decode back', () => {
    expectCodecError(() => encodeKvCommand(put('c', 1, '', 'v')), /key/);
    expectCodecError(() => encodeKvCommand(put('', 1, 'k', 'v')), /clientId/);
    expectCodecError(() => encodeKvCommand(put('c', 0, 'k', 'v')), /seq/);
    expectCodecError(() => encodeKvCommand(put('c', 1.5, 'k', 'v')), /seq/);
    expectCodecError(() => encodeKvCommand(put('c', 1, 'k\uD800', 'v')), /surrogate/);
    expectCodecError(() => encodeKvCommand(put('c', 1, 'k', '\uDC00x')), /surrogate/);
    expectCodecError(() => encodeKvCommand({ op: 'nope' } as unknown as KvCommand), /unknown op/);
  });

  it('requestKey is clientId#seq', () => {
    expect(requestKey({ clientId: 'n1-ab', seq: 42 })).toBe('n1-ab#42');
  });

  it('decodes repeated client ids and keys the same as new ones, whatever their text', () => {
    // Client ids and keys are answered from a cache when their bytes were seen before:
    // it must never hand back another string, nor let bytes skip UTF-8 validation.
    const texts = ['a', 'ab', 'abd', 'abc', 'ключ', '🙂', '\uFEFFa', 'x'.repeat(64), 'y'.repeat(65), 'k\0'];
    for (let round = 0; round < 3; round++) {
      for (const [i, t] of texts.entries()) {
        const c = put(t, round * texts.length + i + 1, t, 'v');
        expect(decodeKvCommand(encodeKvCommand(c))).toEqual(c);
      }
    }
    const bytes = encodeKvCommand(put('ab', 1, 'ab', 'v'));
    // The same command with key bytes that are not UTF-8 (0xC3 0x28), as long as 'ab'.
    const bad = Uint8Array.from(bytes);
    const at = bytes.indexOf(0x61, 3 + 2 + 1);
    bad.set([0xc3, 0x28], at);
    expectCodecError(() => decodeKvCommand(bad), /key: invalid UTF-8/);
    expect(decodeKvCommand(bytes)).toEqual(put('ab', 1, 'ab', 'v'));
  });

  it('member context carries the address as JSON and tolerates foreign contexts', () => {
    expect(decodeMemberContext(encodeMemberContext({ address: '10.0.0.1:2380' }))).toEqual({
      address: '10.0.0.1:2380',
    });
    expect(decodeMemberContext(new TextEncoder().encode('{"address":"h:1","token":"t"}'))).toEqual({
      address: 'h:1',
      token: 't',
    });
    expect(decodeMemberContext(new Uint8Array())).toEqual({});
    expect(decodeMemberContext(new Uint8Array([0xff, 0x00]))).toEqual({});
    expect(decodeMemberContext(new TextEncoder().encode('{"address":5,"token":"t"}'))).toEqual({
      token: 't',
    });
    expect(decodeMemberContext(new TextEncoder().encode('null'))).toEqual({});
  });
});

describe('KvStore dedupe', () => {
  it('a retried clientId+seq returns the cached result without applying again', () => {
    const kv = new KvStore();
    const first = applyOne(kv, 1, encodeKvCommand(put('c', 1, 'a', 'x')));
    applyOne(kv, 2, encodeKvCommand(put('other', 1, 'a', 'y')));
    const before = kv.snapshot();
    const retry = applyOne(kv, 3, encodeKvCommand(put('c', 1, 'a', 'x')));
    expect(retry).toEqual(first);
    expect(kv.get('a')).toMatchObject({ value: 'y', version: 2, modRevision: 2 });
    expect(kv.revision).toBe(2);
    expect(kv.snapshot()).toEqual(before);
  });

  it('the cached result comes from the first application even if the retry carries other data', () => {
    const kv = new KvStore();
    applyAll(kv, [cas('c', 1, 'k', null, 'v')]);
    const retry = applyOne(kv, 2, encodeKvCommand(cas('c', 1, 'k', null, 'different')))!.result;
    expect(retry).toMatchObject({ ok: true, revision: 1, current: { value: 'v' } });
    expect(kv.get('k')?.value).toBe('v');
  });

  it('requests of one client applied out of order are each applied once', () => {
    const kv = new KvStore();
    applyAll(kv, [
      put('c', 2, 'a', '2'),
      put('c', 1, 'b', '1'),
      put('c', 3, 'a', '3'),
      put('c', 1, 'b', 'again'),
    ]);
    expect(kv.get('a')).toMatchObject({ value: '3', version: 2 });
    expect(kv.get('b')).toMatchObject({ value: '1', version: 1 });
  });

  it('a retry older than the remembered results has an unknown outcome: not applied, no result', () => {
    const kv = new KvStore({ resultsPerSession: 2 });
    applyAll(kv, [put('c', 1, 'a', '1'), put('c', 2, 'a', '2'), put('c', 3, 'a', '3')]);
    // seq 1 was forgotten (floor 1): it must not run a second time.
    expect(applyOne(kv, 4, encodeKvCommand(put('c', 1, 'a', '1')))).toBeUndefined();
    expect(kv.get('a')).toMatchObject({ value: '3', version: 3 });
    // seqs 2 and 3 are still remembered.
    expect(applyOne(kv, 5, encodeKvCommand(put('c', 2, 'a', '2')))?.result).toMatchObject({ revision: 2 });
    expect(kv.revision).toBe(3);
  });

  it('cached results cannot be changed by the caller', () => {
    const kv = new KvStore();
    const r = applyOne(kv, 1, encodeKvCommand(cas('c', 1, 'k', null, 'v')))!.result;
    expect(() => {
      (r as { revision: number }).revision = 99;
    }).toThrow();
    expect(() => {
      (kv.get('k') as { value: string }).value = 'x';
    }).toThrow();
  });

  it('forgets the least recently writing client first, decided by index only', () => {
    const run = () => {
      const kv = new KvStore({ maxSessions: 2 });
      applyAll(kv, [
        put('a', 1, 'k', '1'),
        put('b', 1, 'k', '2'),
        put('a', 2, 'k', '3'),
        put('c', 1, 'k', '4'),
      ]);
      return kv;
    };
    const kv = run();
    expect(kv.sessionCount).toBe(2);
    // b was least recent (a wrote again at index 3): b's retry is a new request now,
    // while a's and c's are still deduplicated.
    expect(applyOne(kv, 5, encodeKvCommand(put('a', 2, 'k', '3')))?.result).toMatchObject({ revision: 3 });
    expect(applyOne(kv, 6, encodeKvCommand(put('c', 1, 'k', '4')))?.result).toMatchObject({ revision: 4 });
    expect(kv.revision).toBe(4);
    expect(applyOne(kv, 7, encodeKvCommand(put('b', 1, 'k', '2')))?.result).toMatchObject({ revision: 7 });
    // Two replicas applying the same entries end in the same state, byte for byte.
    expect(run().snapshot()).toEqual(run().snapshot());
  });
});

describe('KV batch entries', () => {
  /** Everything a store reports while applying one entry. */
  function heardFrom(kv: KvStore, index: number, data: Uint8Array) {
    const heard: { clientId: string; seq: number; result: KvResult }[] = [];
    kv.apply(index, data, (clientId, seq, result) => heard.push({ clientId, seq, result }));
    return heard;
  }

  it('applies its commands in order, all at the entry index, and reports each', () => {
    const kv = new KvStore();
    applyAll(kv, [put('c', 1, 'a', 'old')]);
    const heard = heardFrom(
      kv,
      5,
      encodeKvBatch(
        [
          put('x', 1, 'a', 'first'),
          put('y', 1, 'a', 'second'),
          cas('x', 2, 'b', null, 'new'),
          del('y', 2, 'a'),
        ].map(encodeKvCommand),
      ),
    );
    expect(heard.map((h) => `${h.clientId}#${h.seq}`)).toEqual(['x#1', 'y#1', 'x#2', 'y#2']);
    // Later commands see the earlier ones: the second put replaced the first, the delete the second.
    expect(heard[1]!.result).toMatchObject({ op: 'put', revision: 5, prev: { value: 'first', version: 2 } });
    expect(heard[3]!.result).toMatchObject({
      op: 'delete',
      revision: 5,
      deleted: 1,
      prev: { value: 'second' },
    });
    expect(kv.get('a')).toBeUndefined();
    expect(kv.get('b')).toEqual({ key: 'b', value: 'new', createRevision: 5, modRevision: 5, version: 1 });
    expect(kv.revision).toBe(5);
  });

  it('answers retries inside and across batches from the session, executing each request once', () => {
    const kv = new KvStore();
    const first = heardFrom(
      kv,
      1,
      encodeKvBatch([put('c', 1, 'k', '1'), put('c', 1, 'k', 'retry')].map(encodeKvCommand)),
    );
    expect(first.map((h) => h.result)).toEqual([first[0]!.result, first[0]!.result]);
    const again = heardFrom(
      kv,
      2,
      encodeKvBatch([put('c', 1, 'k', '2'), put('c', 2, 'k', '3')].map(encodeKvCommand)),
    );
    expect(again[0]!.result).toBe(first[0]!.result);
    expect(kv.get('k')).toMatchObject({ value: '3', version: 2, modRevision: 2 });
  });

  it('answers puts without their previous entry at the revision of their own entry', () => {
    const kv = new KvStore();
    const bare = (clientId: string, seq: number, key: string): KvCommand => ({
      op: 'put',
      clientId,
      seq,
      key,
      value: 'v',
      prevKv: false,
    });
    const third = heardFrom(
      kv,
      3,
      encodeKvBatch([bare('a', 1, 'k'), bare('b', 1, 'k')].map(encodeKvCommand)),
    );
    const fourth = heardFrom(
      kv,
      4,
      encodeKvBatch([bare('a', 2, 'k'), bare('b', 2, 'j')].map(encodeKvCommand)),
    );
    expect(third.map((h) => h.result)).toEqual([
      { op: 'put', revision: 3 },
      { op: 'put', revision: 3 },
    ]);
    expect(fourth.map((h) => h.result)).toEqual([
      { op: 'put', revision: 4 },
      { op: 'put', revision: 4 },
    ]);
    // A retry of an earlier request still hears the revision it was applied at.
    expect(heardFrom(kv, 5, encodeKvCommand(bare('b', 1, 'k')))[0]!.result).toEqual({
      op: 'put',
      revision: 3,
    });
    expect(Object.isFrozen(third[0]!.result)).toBe(true);
  });

  it('refuses a batch whole when any command in it does not decode', () => {
    const kv = new KvStore();
    applyAll(kv, [put('c', 1, 'a', 'x')]);
    const before = kv.snapshot();
    const good = encodeKvCommand(put('d', 1, 'b', 'y'));
    const bad = encodeKvCommand(put('d', 2, 'c', 'z')).slice();
    bad[1] = 9; // unknown op
    expectCodecError(() => kv.apply(2, encodeKvBatch([good, bad])), /unknown op 9/);
    expectCodecError(() => kv.apply(2, encodeKvBatch([good, good]).subarray(0, 10)), /truncated/);
    expect(kv.snapshot()).toEqual(before);
  });

  it('holds 2 to MAX_BATCH_COMMANDS commands; a count outside that does not decode', () => {
    const one = encodeKvCommand(put('c', 1, 'k', 'v'));
    expect(() => encodeKvBatch([one])).toThrow(RangeError);
    expect(() => encodeKvBatch(new Array(MAX_BATCH_COMMANDS + 1).fill(one))).toThrow(RangeError);
    const full = encodeKvBatch(new Array(MAX_BATCH_COMMANDS).fill(one));
    expect(decodeKvEntryData(full)).toHaveLength(MAX_BATCH_COMMANDS);
    // [version, batch op, count 1] followed by one command.
    expectCodecError(() => decodeKvEntryData(new Uint8Array([1, 4, 1, ...one])), /batch count 1/);
    // A batch is not a single command.
    expectCodecError(() => decodeKvCommand(encodeKvBatch([one, one])), /unknown op 4/);
    expect(decodeKvEntryData(one)).toEqual([put('c', 1, 'k', 'v')]);
  });

  it('counts the writes an entry holds from its header', () => {
    const one = encodeKvCommand(put('c', 1, 'k', 'v'));
    expect(kvCommandCount(one)).toBe(1);
    expect(kvCommandCount(new Uint8Array())).toBe(1);
    expect(kvCommandCount(new Uint8Array([0xff, 4, 9]))).toBe(1);
    expect(kvCommandCount(encodeKvBatch([one, one, one]))).toBe(3);
    // 200 needs a two-byte varint.
    expect(kvCommandCount(encodeKvBatch(new Array(200).fill(one)))).toBe(200);
    expect(kvCommandCount(encodeKvBatch(new Array(MAX_BATCH_COMMANDS).fill(one)))).toBe(MAX_BATCH_COMMANDS);
  });

  it('describes a batch by its size and first command', () => {
    const data = encodeKvBatch([put('c', 1, 'k', 'v'), del('c', 2, 'k')].map(encodeKvCommand));
    expect(describeKvData(data)).toBe('batch of 2: put "k" = "v", …');
    expect(describeKvData(encodeKvCommand(del('c', 2, 'k')))).toBe('del "k"');
  });

  it('applying commands in batches equals applying them one by one at each batch index', () => {
    const command = fc
      .record({
        client: fc.integer({ min: 0, max: 3 }),
        op: fc.integer({ min: 0, max: 3 }),
        key: fc.integer({ min: 0, max: 3 }),
        value: fc.integer({ min: 0, max: 2 }),
        retry: fc.boolean(),
      })
      .map((r) => r);
    fc.assert(
      fc.property(
        fc.array(fc.array(command, { minLength: 1, maxLength: 6 }), { maxLength: 25 }),
        fc.integer({ min: 1, max: 4 }),
        (entries, window) => {
          const seqs = [0, 0, 0, 0];
          const batched = new KvStore({ resultsPerSession: window, maxSessions: 3 });
          const single = new KvStore({ resultsPerSession: window, maxSessions: 3 });
          entries.forEach((entry, i) => {
            const cmds = entry.map((r) => {
              const clientId = `client-${r.client}`;
              // A retry repeats the client's last seq (with other content), or is its first request.
              const seq = r.retry && seqs[r.client]! > 0 ? seqs[r.client]! : ++seqs[r.client]!;
              const key = `k${r.key}`;
              const value = `v${r.value}`;
              return r.op === 0
                ? put(clientId, seq, key, value)
                : r.op === 1
                  ? del(clientId, seq, key)
                  : cas(clientId, seq, key, r.op === 2 ? null : value, `${value}'`);
            });
            const data =
              cmds.length === 1 ? encodeKvCommand(cmds[0]!) : encodeKvBatch(cmds.map(encodeKvCommand));
            const heard = heardFrom(batched, i + 1, data);
            const expected = cmds.flatMap((c) => heardFrom(single, i + 1, encodeKvCommand(c)));
            expect(heard).toEqual(expected);
            expect(batched.snapshot()).toEqual(single.snapshot());
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('KvStore sessions against a model', () => {
  // The rule, stated plainly: a client's last `window` results are kept; when one more
  // comes, the oldest goes if seqs arrived in order, else the smallest; a seq at or below
  // the highest forgotten one has an unknown outcome. The least recently writing client
  // is forgotten first once there are more than `max`.
  class Model {
    sessions = new Map<string, { results: number[]; floor: number; maxSeq: number; ascending: boolean }>();
    constructor(
      private window: number,
      private max: number,
    ) {}
    arrive(clientId: string, seq: number): 'executed' | 'cached' | 'stale' {
      const s = this.sessions.get(clientId);
      if (s?.results.includes(seq)) return 'cached';
      if (s && seq <= s.floor) return 'stale';
      const session = s ?? { results: [], floor: 0, maxSeq: 0, ascending: true };
      session.results.push(seq);
      if (seq > session.maxSeq) session.maxSeq = seq;
      else session.ascending = false;
      if (session.results.length > this.window) {
        const victim = session.ascending ? session.results[0]! : Math.min(...session.results);
        session.results.splice(session.results.indexOf(victim), 1);
        session.floor = Math.max(session.floor, victim);
      }
      this.sessions.delete(clientId);
      this.sessions.set(clientId, session);
      if (this.sessions.size > this.max) this.sessions.delete(this.sessions.keys().next().value!);
      return 'executed';
    }
  }

  it('executes, answers from the session or refuses exactly as the rule says, in any arrival order', () => {
    const arrival = fc.record({
      client: fc.integer({ min: 0, max: 4 }),
      seq: fc.integer({ min: 1, max: 12 }),
    });
    fc.assert(
      fc.property(
        fc.array(arrival, { maxLength: 120 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        (arrivals, window, max) => {
          const kv = new KvStore({ resultsPerSession: window, maxSessions: max });
          const model = new Model(window, max);
          arrivals.forEach(({ client, seq }, i) => {
            const clientId = `c${client}`;
            const revisionBefore = kv.revision;
            const heard = applyOne(kv, i + 1, encodeKvCommand(put(clientId, seq, 'k', `${i}`)));
            const got =
              heard === undefined ? 'stale' : kv.revision === revisionBefore ? 'cached' : 'executed';
            expect(got, `arrival ${i}: ${clientId}#${seq}`).toBe(model.arrive(clientId, seq));
          });
          expect(kv.sessionCount).toBe(model.sessions.size);
          // A restored copy keeps deciding the same way.
          const copy = new KvStore({ resultsPerSession: window, maxSessions: max });
          copy.restore(kv.snapshot());
          expect(copy.snapshot()).toEqual(kv.snapshot());
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('KvStore snapshot', () => {
  function populated(): KvStore {
    const kv = new KvStore({ resultsPerSession: 2 });
    applyAll(kv, [
      put('c1', 1, 'a', 'x'),
      put('c1', 2, 'b', 'y'),
      put('c2', 1, 'a', 'z'),
      del('c1', 3, 'b'),
      cas('c2', 2, 'q', null, '\u{1F600}'),
      cas('c3', 1, 'q', 'nope', 'w'),
    ]);
    kv.setMember(1, 'h1:2380', false);
    kv.setMember(3, 'h3:2380', true);
    return kv;
  }

  it('round-trips data, revisions, members and sessions', () => {
    const kv = populated();
    const bytes = kv.snapshot();
    const copy = new KvStore({ resultsPerSession: 2 });
    applyOne(copy, 1, encodeKvCommand(put('junk', 1, 'junk', 'junk')));
    copy.restore(bytes);
    expect(copy.snapshot()).toEqual(bytes);
    expect(copy.revision).toBe(6);
    expect(copy.size).toBe(2);
    expect(copy.get('a')).toEqual({ key: 'a', value: 'z', createRevision: 1, modRevision: 3, version: 2 });
    expect(copy.get('junk')).toBeUndefined();
    expect(copy.range('\0', '\0')).toEqual(kv.range('\0', '\0'));
    expect([...copy.members]).toEqual([
      [1, { address: 'h1:2380', learner: false }],
      [3, { address: 'h3:2380', learner: true }],
    ]);
    // Sessions survive: a retry after restore still gets the first result.
    const original = applyOne(kv, 7, encodeKvCommand(del('c1', 3, 'b')));
    const restored = applyOne(copy, 7, encodeKvCommand(del('c1', 3, 'b')));
    expect(restored).toEqual(original);
    expect(restored?.result).toMatchObject({ revision: 4, deleted: 1, prev: { value: 'y' } });
    // ...and the forgotten floor survives too.
    expect(applyOne(copy, 8, encodeKvCommand(put('c1', 1, 'a', 'x')))).toBeUndefined();
    // Both continue identically.
    applyAll(kv, [put('c4', 1, 'n', 'v')], 9);
    applyAll(copy, [put('c4', 1, 'n', 'v')], 9);
    expect(copy.snapshot()).toEqual(kv.snapshot());
  });

  it('round-trips the ids removed from the cluster, and restores version 1 snapshots (none removed)', () => {
    const kv = new KvStore();
    kv.setMember(1, 'a', false);
    kv.setMember(4, 'd', false);
    kv.removeMember(4);
    kv.removeMember(2);
    const copy = new KvStore();
    copy.restore(kv.snapshot());
    expect([1, 2, 3, 4].map((id) => copy.isRemoved(id))).toEqual([false, true, false, true]);
    expect(copy.snapshot()).toEqual(kv.snapshot());

    // Version 1 had no removed list. After the magic: version, revision 1, one member (id 1,
    // not a learner, address "a"), no removed ids, then the keys. Drop that empty list.
    const none = new KvStore();
    none.setMember(1, 'a', false);
    applyAll(none, [put('c1', 1, 'k', 'v')]);
    const v2 = none.snapshot();
    expect([...v2.subarray(4, 12)]).toEqual([2, 1, 1, 1, 0, 1, 0x61, 0]);
    const v1 = Uint8Array.from([...v2.subarray(0, 4), 1, ...v2.subarray(5, 11), ...v2.subarray(12)]);
    const old = new KvStore();
    old.restore(v1);
    expect(old.get('k')?.value).toBe('v');
    expect(old.snapshot()).toEqual(v2);

    // An id both a member and removed is a corrupt snapshot.
    const both = kv.snapshot().slice();
    // After the magic: version 2, revision 0, member 1 ("a"), two removed ids: 2 and 4.
    // Rewrite the 2 as 1.
    const at = both.indexOf(2, 12);
    expect([...both.subarray(4, at + 1)]).toEqual([2, 0, 1, 1, 0, 1, 0x61, 2, 2]);
    both[at] = 1;
    expectCodecError(() => new KvStore().restore(both), /node 1 is both a member and removed/);
  });

  it('is deterministic whatever order members were added in', () => {
    const a = new KvStore();
    const b = new KvStore();
    a.setMember(1, 'x', false);
    a.setMember(2, 'y', false);
    b.setMember(2, 'y', false);
    b.setMember(1, 'x', false);
    expect(a.snapshot()).toEqual(b.snapshot());
  });

  it('restores empty bytes as the empty state', () => {
    const kv = populated();
    kv.restore(new Uint8Array());
    expect(kv.size).toBe(0);
    expect(kv.revision).toBe(0);
    expect(kv.members.size).toBe(0);
    expect(kv.snapshot()).toEqual(new KvStore().snapshot());
  });

  it('refuses truncated or corrupted snapshots and keeps its state', () => {
    const bytes = populated().snapshot();
    const kv = populated();
    const before = kv.snapshot();
    for (let n = 1; n < bytes.length; n++) expectCodecError(() => kv.restore(bytes.subarray(0, n)));
    expectCodecError(() => kv.restore(new Uint8Array([...bytes, 0])), /trailing/);
    expectCodecError(() => kv.restore(new TextEncoder().encode('{"not":"ours"}')), /magic/);
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (at, v) => {
        const bad = bytes.slice();
        bad[at % bad.length] = v;
        try {
          kv.restore(bad);
          // A corruption that still decodes must be a canonical snapshot (of the current
          // version: one turned into a readable version 1 is written back as version 2).
          const again = kv.snapshot();
          if (bad[4] === 2) expect(again).toEqual(bad);
          else expect(again[4]).toBe(2);
          kv.restore(before);
        } catch (err) {
          expect(err).toBeInstanceOf(KvCodecError);
        }
      }),
    );
    expect(kv.snapshot()).toEqual(before);
  });
});

describe('KvStore dedupe property', () => {
  type Step =
    | { kind: 'new'; client: number; op: number; key: number; value: number }
    | { kind: 'retry'; pick: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant('new' as const),
      client: fc.integer({ min: 0, max: 3 }),
      op: fc.integer({ min: 0, max: 3 }),
      key: fc.integer({ min: 0, max: 3 }),
      value: fc.integer({ min: 0, max: 2 }),
    }),
    fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }),
  );

  function build(steps: Step[]): KvCommand[] {
    const seqs = [0, 0, 0, 0];
    const issued: KvCommand[] = [];
    const out: KvCommand[] = [];
    for (const s of steps) {
      if (s.kind === 'retry') {
        if (issued.length > 0) out.push(issued[s.pick % issued.length]!);
        continue;
      }
      const clientId = `client-${s.client}`;
      const seq = ++seqs[s.client]!;
      const key = `k${s.key}`;
      const value = `v${s.value}`;
      const c: KvCommand =
        s.op === 0
          ? put(clientId, seq, key, value)
          : s.op === 1
            ? del(clientId, seq, key)
            : cas(clientId, seq, key, s.op === 2 ? null : value, `${value}'`);
      issued.push(c);
      out.push(c);
    }
    return out;
  }

  it('applying commands with random duplicated retries equals applying them deduplicated', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), fc.integer({ min: 1, max: 20 }), (steps, window) => {
        const cmds = build(steps);
        const withRetries = new KvStore({ resultsPerSession: window });
        const deduped = new KvStore({ resultsPerSession: window });
        const firstResult = new Map<string, KvResult>();
        cmds.forEach((c, i) => {
          const key = requestKey(c);
          const applied = applyOne(withRetries, i + 1, encodeKvCommand(c));
          const first = firstResult.get(key);
          if (first === undefined) {
            // First occurrence: the deduplicated log has it at the same index.
            const expected = applyOne(deduped, i + 1, encodeKvCommand(c));
            expect(applied).toEqual(expected);
            firstResult.set(key, applied!.result);
          } else if (applied !== undefined) {
            // A retry is answered from the cache...
            expect(applied.result).toEqual(first);
          }
          // ...or, once forgotten, not at all; never applied twice.
          expect(withRetries.snapshot()).toEqual(deduped.snapshot());
        });
      }),
      { numRuns: 300 },
    );
  });
});
