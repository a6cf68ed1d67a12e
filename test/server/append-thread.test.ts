// The append thread: MsgStorageAppends persisted in order, those that queue behind a write
// in flight coalesced into the next one, and each one's responses released only once it
// (and everything before it) is on disk; a snapshot installed before its responses go.
import { describe, expect, it } from 'vitest';
import {
  type Entry,
  LOCAL_APPEND_THREAD,
  type Message,
  message,
  type Snapshot,
} from '../../src/raft/types.js';
import { AppendThread, type AppendThreadHost, appendEntries } from '../../src/server/append-thread.js';
import type { SaveRequest } from '../../src/server/storage/disk-storage.js';

function entry(index: number, term = 1): Entry {
  return { term, index, type: 'EntryNormal', data: new Uint8Array([index]) };
}

function entries(from: number, to: number, term = 1): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));
}

/** A response the test can recognise by its index. */
function ack(index: number): Message {
  return message({ type: 'MsgAppResp', from: 2, to: 1, term: 1, index });
}

/** A MsgStorageAppend and its Ready's mustSync (by default: whether it carries entries). */
function append(opts: {
  entries?: Entry[];
  hs?: { term: number; vote: number; commit: number };
  snapshot?: Snapshot;
  responses?: Message[];
  mustSync?: boolean;
}): [Message, boolean] {
  const m = message({
    type: 'MsgStorageAppend',
    from: 2,
    to: LOCAL_APPEND_THREAD,
    entries: opts.entries ?? [],
  });
  if (opts.hs) Object.assign(m, opts.hs);
  if (opts.snapshot) m.snapshot = opts.snapshot;
  m.responses = opts.responses ?? [];
  return [m, opts.mustSync ?? m.entries.length > 0];
}

function snapshot(index: number): Snapshot {
  return {
    data: new Uint8Array([9]),
    metadata: {
      index,
      term: 1,
      confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
  };
}

/** A host whose writes finish when the test says so; it records everything in order. */
class Host implements AppendThreadHost {
  readonly log: string[] = [];
  readonly saves: SaveRequest[] = [];
  private finish: ((err?: Error) => void)[] = [];

  save(req: SaveRequest): Promise<void> {
    this.saves.push(req);
    this.log.push(`save ${req.entries.map((e) => e.index).join(',')}`);
    return new Promise((resolve, reject) => this.finish.push((err) => (err ? reject(err) : resolve())));
  }
  async installSnapshot(snap: Snapshot): Promise<void> {
    this.log.push(`install ${snap.metadata.index}`);
  }
  release(responses: Message[]): void {
    this.log.push(`release ${responses.map((m) => m.index).join(',')}`);
  }
  fail(err: unknown): void {
    this.log.push(`fail ${(err as Error).message}`);
  }
  /** Completes the oldest write in flight (or fails it), then lets the thread go on. */
  async complete(err?: Error): Promise<void> {
    const f = this.finish.shift();
    if (!f) throw new Error('no write in flight');
    f(err);
    await new Promise((r) => setImmediate(r));
  }
}

describe('AppendThread', () => {
  it('starts the first write before push returns and releases its responses only once it is done', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    thread.push(...append({ entries: entries(1, 2), responses: [ack(2)] }));
    expect(host.log).toEqual(['save 1,2']);
    await new Promise((r) => setImmediate(r));
    expect(host.log).toEqual(['save 1,2']);
    await host.complete();
    expect(host.log).toEqual(['save 1,2', 'release 2']);
  });

  it('writes what queued behind a write in flight as one, and releases every response in order', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    thread.push(...append({ entries: entries(1, 1), responses: [ack(1)] }));
    thread.push(...append({ entries: entries(2, 3), responses: [ack(3)] }));
    thread.push(...append({ hs: { term: 1, vote: 1, commit: 2 }, responses: [ack(30)] }));
    thread.push(
      ...append({ entries: entries(4, 4), hs: { term: 1, vote: 1, commit: 3 }, responses: [ack(4)] }),
    );
    await host.complete();
    expect(host.log).toEqual(['save 1', 'release 1', 'save 2,3,4']);
    expect(host.saves[1]!.hardState).toEqual({ term: 1, vote: 1, commit: 3 });
    expect(host.saves[1]!.mustSync).toBe(true);
    await host.complete();
    expect(host.log.at(-1)).toBe('release 3,30,4');
  });

  it('replaces entries a newer leader overwrote between two queued writes', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    thread.push(...append({ entries: entries(1, 1) }));
    thread.push(...append({ entries: entries(2, 5) }));
    thread.push(...append({ entries: entries(4, 6, 2) }));
    await host.complete();
    expect(host.saves[1]!.entries.map((e) => `${e.term}/${e.index}`)).toEqual([
      '1/2',
      '1/3',
      '2/4',
      '2/5',
      '2/6',
    ]);
  });

  it('syncs a write when any Ready in it must be synced, and not one that only moves the commit index', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    thread.push(...append({ hs: { term: 1, vote: 1, commit: 5 } }));
    expect(host.saves[0]!.mustSync).toBe(false);
    thread.push(...append({ hs: { term: 1, vote: 1, commit: 6 } }));
    thread.push(...append({ hs: { term: 2, vote: 3, commit: 6 }, mustSync: true }));
    thread.push(...append({ hs: { term: 2, vote: 3, commit: 7 } }));
    await host.complete();
    expect(host.saves[1]!.mustSync).toBe(true);
    expect(host.saves[1]!.hardState).toEqual({ term: 2, vote: 3, commit: 7 });
  });

  it('writes nothing for a message that only carries responses, but still releases them after the writes before it', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    thread.push(...append({ entries: entries(1, 1), responses: [ack(1)] }));
    thread.push(...append({ responses: [ack(10)] }));
    await host.complete();
    await new Promise((r) => setImmediate(r));
    expect(host.log).toEqual(['save 1', 'release 1', 'release 10']);
    expect(host.saves).toHaveLength(1);
  });

  it('writes a snapshot on its own and installs it before its responses go', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    thread.push(...append({ entries: entries(1, 1), responses: [ack(1)] }));
    thread.push(...append({ entries: entries(2, 2), responses: [ack(2)] }));
    thread.push(...append({ snapshot: snapshot(10), entries: entries(11, 11), responses: [ack(11)] }));
    thread.push(...append({ entries: entries(12, 12), responses: [ack(12)] }));
    await host.complete();
    await host.complete();
    await host.complete();
    await host.complete();
    expect(host.log).toEqual([
      'save 1',
      'release 1',
      'save 2',
      'release 2',
      'save 11',
      'install 10',
      'release 11',
      'save 12',
      'release 12',
    ]);
    expect(host.saves[2]!.snapshot?.metadata.index).toBe(10);
    expect(host.saves[2]!.mustSync).toBe(true);
  });

  it('resolves persisted() once everything pushed before the call is on disk, not before', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    await thread.persisted();
    thread.push(...append({ entries: entries(1, 1) }));
    thread.push(...append({ entries: entries(2, 2) }));
    let done = false;
    void thread.persisted().then(() => {
      done = true;
    });
    thread.push(...append({ entries: entries(3, 3) }));
    await host.complete();
    expect(done).toBe(false);
    await host.complete();
    expect(done).toBe(true);
  });

  it('stops at a failed write: reports it, releases nothing after it, and no longer blocks persisted()', async () => {
    const host = new Host();
    const thread = new AppendThread(host);
    thread.push(...append({ entries: entries(1, 1), responses: [ack(1)] }));
    thread.push(...append({ entries: entries(2, 2), responses: [ack(2)] }));
    let done = false;
    void thread.persisted().then(() => {
      done = true;
    });
    await host.complete(new Error('disk full'));
    await new Promise((r) => setImmediate(r));
    expect(host.log).toEqual(['save 1', 'fail disk full']);
    expect(done).toBe(true);
    thread.push(...append({ entries: entries(3, 3), responses: [ack(3)] }));
    expect(host.log).toEqual(['save 1', 'fail disk full']);
    await thread.persisted();
  });
});

describe('appendEntries', () => {
  it('appends contiguous entries and truncates where the next ones start inside', () => {
    expect(appendEntries(entries(1, 3), entries(4, 5)).map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
    expect(appendEntries(entries(1, 3), entries(2, 2, 2)).map((e) => `${e.term}/${e.index}`)).toEqual([
      '1/1',
      '2/2',
    ]);
    expect(appendEntries(entries(5, 6), entries(3, 4, 2)).map((e) => e.index)).toEqual([3, 4]);
    const acc = entries(1, 2);
    expect(appendEntries(acc, [])).toBe(acc);
    expect(appendEntries([], acc)).toBe(acc);
  });
});
