import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCapture, encodeKvCommand, type KvCommand, KvStore } from '../../src/server/kv.js';
import { type ArenaRecord, NO_CHUNK, RecordArena, type RecordSpan } from '../../src/server/kv-arena.js';

const utf8 = new TextEncoder();

function newRecord(): ArenaRecord {
  return { chunk: NO_CHUNK, start: 0, end: 0, valueStart: 0, valueEnd: 0, current: false };
}

/** The bytes the arena should hold for a record: the snapshot's entry encoding. */
function expectedRecord(key: string, value: string, create: number, mod: number, version: number): number[] {
  const varint = (v: number): number[] => {
    const out: number[] = [];
    let rest = v;
    while (rest >= 0x80) {
      out.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    out.push(rest);
    return out;
  };
  const k = [...utf8.encode(key)];
  const v = [...utf8.encode(value)];
  return [
    ...varint(k.length),
    ...k,
    ...varint(v.length),
    ...v,
    ...varint(create),
    ...varint(mod),
    ...varint(version),
  ];
}

/** Writes key and value (laid out in one source buffer, as a command carries them) into rec. */
function writeRecord(arena: RecordArena, rec: ArenaRecord, key: string, value: string, mod: number): void {
  const k = utf8.encode(key);
  const v = utf8.encode(value);
  const src = new Uint8Array(3 + k.length + v.length);
  src.set(k, 3);
  src.set(v, 3 + k.length);
  arena.write(rec, src, 3, 3 + k.length, 3 + k.length, src.length, 1, mod, mod);
}

const bytesOf = (s: RecordSpan): number[] => [...s.chunk.bytes.subarray(s.start, s.end)];

describe('RecordArena', () => {
  it('holds each current record as the entry encoding, through overwrites and compactions, in bounded space', () => {
    const arena = new RecordArena();
    const keys = Array.from({ length: 100 }, (_, i) => `key/${i}`);
    const records = keys.map(() => newRecord());
    const values = keys.map(() => '');
    let written = 0;
    for (let round = 1; round <= 300; round++) {
      for (let i = 0; i < keys.length; i++) {
        // Every round rewrites a different part of the keys, with sizes from 10 B to 2 KB.
        if ((i * 7 + round) % 3 === 0) continue;
        const rec = records[i]!;
        if (rec.current) arena.release(rec);
        values[i] = `${round}:${'x'.repeat((i * 131 + round * 17) % 2000)}é`;
        writeRecord(arena, rec, keys[i]!, values[i]!, round);
        written += rec.end - rec.start;
      }
      arena.compactSome();
    }
    let live = 0;
    for (let i = 0; i < keys.length; i++) {
      const rec = records[i]!;
      const mod = Number(values[i]!.split(':')[0]);
      expect(bytesOf(rec)).toEqual(expectedRecord(keys[i]!, values[i]!, 1, mod, mod));
      expect(rec.chunk.bytes.toString('utf8', rec.valueStart, rec.valueEnd)).toBe(values[i]);
      live += rec.end - rec.start;
    }
    expect(arena.stats.liveBytes).toBe(live);
    // ~20 MB written through 1 MiB chunks; the live records are ~100 KB.
    expect(written).toBeGreaterThan(16 * 2 ** 20);
    expect(arena.stats.bytes).toBeLessThanOrEqual(8 * 2 ** 20);
  });

  it('gives a record over an eighth of a chunk a chunk of its own, let go once the record is replaced', () => {
    const arena = new RecordArena();
    const rec = newRecord();
    writeRecord(arena, rec, 'big', 'b'.repeat(200_000), 1);
    const big = rec.chunk;
    expect(big.bytes.length).toBe(rec.end - rec.start);
    arena.release(rec);
    writeRecord(arena, rec, 'big', 'small', 2);
    arena.compactSome();
    expect(rec.chunk).not.toBe(big);
    expect(arena.stats.chunks).toBe(1);
    expect(arena.stats.bytes).toBe(2 ** 20);
  });

  it('keeps compacted chunks unused while pinned, so a span noted before stays readable', () => {
    const arena = new RecordArena();
    const recs = Array.from({ length: 40 }, () => newRecord());
    for (const [i, r] of recs.entries()) writeRecord(arena, r, `k${i}`, `${i}`.padEnd(30_000, '.'), 1);
    const spans = recs.map((r): RecordSpan => ({ chunk: r.chunk, start: r.start, end: r.end }));
    const before = spans.map(bytesOf);
    arena.pin();
    // Replace most records (their chunk goes sparse), compact, and write enough to have
    // reused any chunk that was not set aside.
    for (let round = 2; round < 6; round++) {
      for (const [i, r] of recs.entries()) {
        if (i % 10 === 0) continue;
        arena.release(r);
        writeRecord(arena, r, `k${i}`, `${round}`.repeat(30_000), round);
      }
      arena.compactSome();
      arena.compactSome();
    }
    expect(spans.map(bytesOf)).toEqual(before);
    // Records never replaced were moved by compaction, with the same bytes.
    expect(recs[0]!.chunk).not.toBe(spans[0]!.chunk);
    expect(bytesOf(recs[0]!)).toEqual(before[0]);
    arena.unpin();
    const held = arena.stats.bytes;
    for (const [i, r] of recs.entries()) {
      arena.release(r);
      writeRecord(arena, r, `k${i}`, 'z'.repeat(30_000), 9);
    }
    // Once unpinned, the chunks set aside are reused rather than new ones allocated.
    expect(arena.stats.bytes).toBeLessThanOrEqual(held);
  });
});

describe('KV store on the arena', () => {
  const put = (seq: number, key: string, value: string): KvCommand => ({
    op: 'put',
    clientId: 'w',
    seq,
    key,
    value,
  });
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('put' as const),
      key: fc.integer({ min: 0, max: 5 }),
      // Large values fill and empty chunks within a few dozen writes.
      size: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 20_000, max: 140_000 })),
    }),
    fc.record({ kind: fc.constant('del' as const), key: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('cas' as const), key: fc.integer({ min: 0, max: 5 }) }),
  );

  it('answers reads, snapshots and captures as a map would, while compaction moves the records', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 80 }), fc.nat(80), async (ops, captureAt) => {
        const kv = new KvStore();
        const model = new Map<string, string>();
        let seq = 0;
        let capture: { state: ReturnType<KvStore['capture']>; expected: Uint8Array } | undefined;
        let encoded: Promise<Uint8Array> | undefined;
        for (const [i, o] of ops.entries()) {
          if (i === captureAt) {
            capture = { state: kv.capture(), expected: kv.snapshot() };
            encoded = encodeCapture(capture.state, 1);
          }
          const key = `k${o.key}`;
          const value = `${i}:`.padEnd(o.kind === 'put' ? o.size : 3, String.fromCharCode(97 + (i % 26)));
          const cmd: KvCommand =
            o.kind === 'put'
              ? put(++seq, key, value)
              : o.kind === 'del'
                ? { op: 'delete', clientId: 'w', seq: ++seq, key }
                : { op: 'cas', clientId: 'w', seq: ++seq, key, expected: model.get(key) ?? null, value };
          kv.apply(seq, encodeKvCommand(cmd));
          if (o.kind === 'del') model.delete(key);
          else model.set(key, value);
          if (i % 3 === 0) await new Promise((r) => setImmediate(r));
        }
        for (let k = 0; k <= 5; k++) expect(kv.get(`k${k}`)?.value).toBe(model.get(`k${k}`));
        if (capture) expect(await encoded).toEqual(capture.expected);
        const restored = new KvStore();
        restored.restore(kv.snapshot());
        expect(restored.range('k', '\0').map((e) => [e.key, e.value])).toEqual(
          [...model].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
        );
        expect(restored.snapshot()).toEqual(kv.snapshot());
      }),
      { numRuns: 25 },
    );
  }, 30_000);
});
