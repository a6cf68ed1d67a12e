import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReplayInfo } from '../../src/ui/controller.js';
import { Recorder, RecordingError, readRecording } from '../../src/ui/record.js';
import { ReplayPlayer } from '../../src/ui/replay.js';
import { ClusterStore } from '../../src/ui/store.js';
import { hello, leaderEvent, message, threeNodes } from './fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raftctl-rec-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('record and replay', () => {
  it('writes every input as NDJSON and reads it back', async () => {
    const file = join(dir, 's.ndjson');
    let now = 1000;
    const rec = new Recorder(file, () => now);
    rec.write({ type: 'hello', address: '127.0.0.1:7001', hello: hello(1) });
    now += 10;
    for (const s of threeNodes()) rec.write({ type: 'state', state: s });
    now += 500;
    rec.write({ type: 'event', event: message(1, 2) });
    rec.write({ type: 'event', event: leaderEvent(2, 1, 2) });
    await rec.close();
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(7);
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'raftctl-recording', version: 1, startedAt: 1000 });
    const { inputs } = await readRecording(file);
    expect(inputs.map((i) => i.t)).toEqual([0, 10, 10, 10, 510, 510]);
    expect(inputs[4]!.input.type).toBe('event');
  });

  it('refuses a file that is not a recording and names a bad line', async () => {
    const bad = join(dir, 'bad.ndjson');
    await writeFile(bad, '{"hello":1}\n');
    await expect(readRecording(bad)).rejects.toThrow(RecordingError);
    const worse = join(dir, 'worse.ndjson');
    await writeFile(
      worse,
      '{"format":"raftctl-recording","version":1,"startedAt":0}\n{"t":1,"input":{"type":"state"}}\n',
    );
    await expect(readRecording(worse)).rejects.toThrow(/worse.ndjson:2: input.state/);
  });

  it('replays at the recorded pace, scaled, with pause and steps', () => {
    const store = new ClusterStore({ publishIntervalMs: 0 });
    const inputs = [
      { t: 0, input: { type: 'hello' as const, address: 'a:1', hello: hello(1) } },
      { t: 100, input: { type: 'event' as const, event: message(1, 2) } },
      { t: 1000, input: { type: 'event' as const, event: message(1, 3) } },
      { t: 2000, input: { type: 'event' as const, event: message(1, 2) } },
    ];
    let now = 0;
    let info: ReplayInfo | undefined;
    const p = new ReplayPlayer(
      store,
      inputs,
      (i) => (info = i),
      () => now,
    );
    p.start({ speed: 2 });
    now += 60;
    p.tick();
    expect(store.ingested).toBe(2); // 120 ms of recording at ×2
    p.togglePause();
    now += 10_000;
    p.tick();
    expect(store.ingested).toBe(2);
    p.step();
    expect(store.ingested).toBe(3);
    expect(info).toMatchObject({ paused: true, position: 3, total: 4, elapsedMs: 1000 });
    p.faster();
    expect(info?.speed).toBe(4);
    p.slower();
    p.slower();
    expect(info?.speed).toBe(1);
    p.togglePause();
    now += 1000;
    p.tick();
    expect(store.ingested).toBe(4);
    expect(p.info().done).toBe(true);
    p.stop();
    store.dispose();
  });
});
