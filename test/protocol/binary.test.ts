import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_PUT_RESULTS,
  FRAME_PUTS,
  type PutAnswer,
  PutFrameWriter,
  PutResultWriter,
  parsePutFrame,
  readPutResults,
} from '../../src/protocol/binary.js';
import { MAX_BATCH_FRAMES, MAX_KEY_BYTES } from '../../src/protocol/control.js';

const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');
/** A frame written byte by byte: numbers are bytes, strings their UTF-8. */
const raw = (...parts: (number | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from([p]))));

function answersOf(frame: Uint8Array): { answers: [number, PutAnswer][]; error: string | undefined } {
  const answers: [number, PutAnswer][] = [];
  const error = readPutResults(frame, (id, a) => answers.push([id, a]));
  return { answers, error };
}

describe('binary put frames', () => {
  it('carry any ids, keys and values through writer and parser unchanged', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 40 });
    const put = fc.record({ id: fc.maxSafeNat(), key: text.filter((k) => k.length > 0), value: text });
    fc.assert(
      fc.property(fc.array(put, { minLength: 1, maxLength: 30 }), (puts) => {
        const w = new PutFrameWriter();
        for (const p of puts) w.add(p.id, p.key, p.value);
        expect(w.count).toBe(puts.length);
        const frame = w.take()!;
        expect(frame[0]).toBe(FRAME_PUTS);
        expect(w.take()).toBeUndefined();
        const parsed = parsePutFrame(frame);
        expect(
          parsed.map((r) => (r.ok ? { id: r.msg.id, key: utf8(r.msg.key), value: utf8(r.msg.value) } : r)),
        ).toEqual(puts);
      }),
    );
  });

  it('grow past their first buffer for values of a megabyte', () => {
    const w = new PutFrameWriter();
    const big = 'x'.repeat(1024 * 1024);
    w.add(1, 'a', big);
    w.add(2, 'b', 'small');
    const parsed = parsePutFrame(w.take()!);
    expect(parsed.map((r) => r.ok && utf8(r.msg.value).length)).toEqual([big.length, 5]);
  });

  it('answers round-trip, revisions and terms up to 2^53-1', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.maxSafeNat(), fc.maxSafeNat(), fc.maxSafeNat()), {
          minLength: 1,
          maxLength: 50,
        }),
        (rows) => {
          const w = new PutResultWriter();
          for (const [id, revision, term] of rows) w.add(id, revision, term);
          const frame = w.take()!;
          expect(frame[0]).toBe(FRAME_PUT_RESULTS);
          expect(answersOf(frame)).toEqual({
            answers: rows.map(([id, revision, term]) => [id, { revision, term }]),
            error: undefined,
          });
        },
      ),
    );
  });

  it('name the field of a bad put, fail it by id, and go on with the next', () => {
    const longKey = 'k'.repeat(MAX_KEY_BYTES + 1);
    const parsed = parsePutFrame(
      raw(FRAME_PUTS, 1, 0, 1, 'v', 2, 0x81, 0x20, longKey, 0, 3, 1, 'k', 1, 0xff, 4, 1, 'k', 1, 'v'),
    );
    expect(parsed).toEqual([
      {
        ok: false,
        error: { code: 'bad_frame', field: 'args.key', message: 'args.key: must not be empty' },
        command: { id: 1, code: 'bad_args' },
      },
      {
        ok: false,
        error: {
          code: 'bad_frame',
          field: 'args.key',
          message: `args.key: ${MAX_KEY_BYTES + 1} bytes exceeds the limit of ${MAX_KEY_BYTES}`,
        },
        command: { id: 2, code: 'bad_args' },
      },
      {
        ok: false,
        error: { code: 'bad_frame', field: 'args.value', message: 'args.value: not valid UTF-8' },
        command: { id: 3, code: 'bad_args' },
      },
      { ok: true, msg: { id: 4, key: raw('k'), value: raw('v') } },
    ]);
  });

  it('stop at a record whose lengths cannot be read, failing it by id when its id was read', () => {
    const cut = parsePutFrame(raw(FRAME_PUTS, 1, 1, 'k', 1, 'v', 2, 1, 'k', 5, 'v', 3));
    expect(cut.map((r) => (r.ok ? r.msg.id : [r.command?.id, r.error.field, r.error.message]))).toEqual([
      1,
      [2, 'args.value', 'args.value: truncated (needs 5 bytes)'],
    ]);
    const padded = parsePutFrame(raw(FRAME_PUTS, 7, 0x81, 0x00, 'k', 1, 'v'));
    expect(padded).toMatchObject([{ ok: false, command: { id: 7 }, error: { field: 'args.key' } }]);
    expect(padded[0]!.ok || padded[0]!.error.message).toMatch(/non-canonical varint at byte 2/);
    const noId = parsePutFrame(raw(FRAME_PUTS, 1, 1, 'k', 1, 'v', 0x80));
    expect(noId[1]).toEqual({
      ok: false,
      error: { code: 'bad_frame', message: 'binary frame: put 2: id: truncated varint at byte 6' },
    });
    const huge = parsePutFrame(raw(FRAME_PUTS, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f));
    expect(huge[0]!.ok || huge[0]!.error.message).toMatch(/longer than 8 bytes|exceeds 2\^53-1/);
  });

  it('refuse frames of another kind, empty ones, and more than MAX_BATCH_FRAMES puts', () => {
    const error = (r: ReturnType<typeof parsePutFrame>) => r.map((x) => (x.ok ? 'ok' : x.error.message));
    expect(error(parsePutFrame(new Uint8Array(0)))).toEqual([
      'binary frame: expected kind 1 (puts), got an empty frame',
    ]);
    expect(error(parsePutFrame(raw(FRAME_PUT_RESULTS, 1, 1, 1)))).toEqual([
      'binary frame: expected kind 1 (puts), got kind 2',
    ]);
    expect(error(parsePutFrame(raw(FRAME_PUTS)))).toEqual([
      'binary frame: a frame of puts must hold at least one put',
    ]);
    const w = new PutFrameWriter();
    for (let i = 0; i <= MAX_BATCH_FRAMES; i++) w.add(i, 'k', '');
    const parsed = parsePutFrame(w.take()!);
    expect(parsed).toHaveLength(MAX_BATCH_FRAMES + 1);
    expect(parsed.slice(0, MAX_BATCH_FRAMES).every((r) => r.ok)).toBe(true);
    expect(error(parsed.slice(MAX_BATCH_FRAMES))).toEqual([
      `binary frame: a frame holds at most ${MAX_BATCH_FRAMES} puts; the rest was not read`,
    ]);
  });

  it('answer frames that are cut short hand on what came before and say where', () => {
    expect(answersOf(raw(FRAME_PUT_RESULTS, 1, 2, 3, 4, 5))).toEqual({
      answers: [[1, { revision: 2, term: 3 }]],
      error: 'truncated varint at byte 6',
    });
    expect(answersOf(raw(FRAME_PUTS, 1, 2, 3)).error).toBe(
      'expected a frame of put results (kind 2), got kind 1',
    );
    expect(answersOf(raw(FRAME_PUT_RESULTS)).error).toBe(
      'expected a frame of put results (kind 2), got 1 bytes',
    );
  });
});
