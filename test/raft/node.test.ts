import { describe, expect, it } from 'vitest';
import { decodeConfChangeEntry } from '../../src/raft/confchange-codec.js';
import { ErrProposalDropped, RaftError } from '../../src/raft/errors.js';
import { ErrStopped, Node } from '../../src/raft/node.js';
import type { Config } from '../../src/raft/raft.js';
import type { Ready } from '../../src/raft/ready.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, message } from '../../src/raft/types.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function config(storage: MemoryStorage, extra: Partial<Config> = {}): Config {
  return { id: 1, electionTick: 10, heartbeatTick: 1, storage, random: () => 0, ...extra };
}

/** Does what a sync-mode host does with a Ready: persist, apply conf changes, advance. */
function handle(node: Node, storage: MemoryStorage, rd: Ready): Ready {
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  for (const e of rd.committedEntries) {
    if (e.type !== 'EntryNormal') node.applyConfChange(decodeConfChangeEntry(e));
  }
  node.advance();
  return rd;
}

async function next(node: Node, storage: MemoryStorage): Promise<Ready> {
  return handle(node, storage, await node.ready());
}

/** A bootstrapped single-node cluster whose bootstrap Ready has been handled. */
async function started(extra: Partial<Config> = {}): Promise<{ node: Node; storage: MemoryStorage }> {
  const storage = new MemoryStorage();
  const node = new Node(config(storage, extra), [{ id: 1 }]);
  await next(node, storage);
  return { node, storage };
}

/** Campaigns and handles Readys until this single node leads and has applied its empty entry. */
async function elected(): Promise<{ node: Node; storage: MemoryStorage }> {
  const { node, storage } = await started();
  node.campaign();
  while (node.status().applied < 2) await next(node, storage);
  expect(node.status().softState.raftState).toBe('StateLeader');
  return { node, storage };
}

/** Settles the microtask queue, so a promise that could resolve now has. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Node, single voter', () => {
  it('bootstraps, campaigns and becomes leader once its votes are persisted', async () => {
    const storage = new MemoryStorage();
    const node = new Node(config(storage), [{ id: 1 }]);

    const boot = await next(node, storage);
    expect(boot.hardState).toEqual({ term: 1, vote: 0, commit: 1 });
    expect(boot.entries.map((e) => e.type)).toEqual(['EntryConfChange']);
    expect(boot.committedEntries).toEqual(boot.entries);
    expect(boot.mustSync).toBe(true);
    expect(node.status().config.voters.incoming.ids()).toEqual([1]);

    node.campaign();
    const vote = await next(node, storage);
    expect(vote.softState).toEqual({ lead: 0, raftState: 'StateCandidate' });
    expect(vote.hardState).toEqual({ term: 2, vote: 1, commit: 1 });
    expect(vote.mustSync).toBe(true);

    // The self-vote counts only at advance(): then the node wins and appends its empty entry.
    const lead = await next(node, storage);
    expect(lead.softState).toEqual({ lead: 1, raftState: 'StateLeader' });
    expect(lead.entries).toMatchObject([{ term: 2, index: 2, type: 'EntryNormal' }]);
    expect(storage.hardState).toEqual({ term: 2, vote: 1, commit: 1 });
  });

  it('commits proposals; input in one turn lands in one Ready', async () => {
    const { node, storage } = await elected();
    node.propose(enc('a'));
    node.propose(enc('b'));
    const appended = await next(node, storage);
    expect(appended.entries.map((e) => [e.index, dec(e.data)])).toEqual([
      [3, 'a'],
      [4, 'b'],
    ]);

    const committed: string[] = [];
    while (committed.length < 2) {
      const rd = await next(node, storage);
      for (const e of rd.committedEntries) if (e.data.length > 0) committed.push(dec(e.data));
    }
    expect(committed).toEqual(['a', 'b']);
    expect(node.status()).toMatchObject({ applied: 4, hardState: { commit: 4 } });
  });

  it('elects itself from ticks alone, resolving a ready() that was already waiting', async () => {
    const { node } = await started();
    const pending = node.ready();
    // random() = 0: the randomized election timeout is exactly electionTick.
    for (let i = 0; i < 10; i++) node.tick();
    expect((await pending).softState?.raftState).toBe('StateCandidate');
  });

  it('drives itself through an onReady listener', async () => {
    const { node, storage } = await started();
    const seen: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const unsubscribe = node.onReady((rd) => {
      handle(node, storage, rd);
      for (const e of rd.committedEntries) if (e.data.length > 0) seen.push(dec(e.data));
      if (seen.length > 0) done();
      if (node.status().softState.raftState === 'StateLeader' && storage.lastIndex() === 2)
        node.propose(enc('x'));
    });
    node.campaign();
    await finished;
    expect(seen).toEqual(['x']);
    unsubscribe();
    expect(() => node.ready()).not.toThrow();
  });
});

describe('Node contract', () => {
  it('throws ErrProposalDropped synchronously without a leader', async () => {
    const { node } = await started();
    expect(() => node.propose(enc('x'))).toThrow(ErrProposalDropped);
    expect(() =>
      node.proposeConfChange({
        kind: 'v2',
        transition: 'ConfChangeTransitionAuto',
        changes: [],
        context: enc(''),
      }),
    ).toThrow('raft proposal dropped');
  });

  it('refuses a second ready() before advance()', async () => {
    const storage = new MemoryStorage();
    const node = new Node(config(storage), [{ id: 1 }]);
    await node.ready();
    expect(() => node.ready()).toThrow(/outstanding; call advance\(\) first/);
    node.advance();
    expect(() => node.advance()).toThrow(/without an outstanding Ready/);
  });

  it('refuses a second consumer while one is waiting', async () => {
    const { node } = await started();
    node.ready().catch(() => {});
    expect(() => node.ready()).toThrow(/ready\(\) is pending/);
    expect(() => node.onReady(() => {})).toThrow(/ready\(\) is pending/);
    node.stop();
  });

  it('does not resolve ready() while nothing is to be done', async () => {
    const { node } = await started();
    let resolved = false;
    const p = node.ready().then(() => {
      resolved = true;
    });
    await settle();
    expect(resolved).toBe(false);
    node.stop();
    await expect(p).rejects.toBe(ErrStopped);
  });

  it('rejects pending and later ready() calls after stop()', async () => {
    const { node } = await started();
    const pending = node.ready();
    node.stop();
    await expect(pending).rejects.toBe(ErrStopped);
    await expect(node.ready()).rejects.toThrow('raft: stopped');
    expect(() => node.propose(enc('x'))).toThrow(ErrStopped);
    expect(() => node.campaign()).toThrow(ErrStopped);
    expect(() => node.onReady(() => {})).toThrow(ErrStopped);
    // Notifications that race with shutdown are ignored.
    node.tick();
    node.reportUnreachable(2);
    node.advance();
    node.stop();
    expect(node.status().id).toBe(1);
  });

  it('drops messages raft refuses, as a network might', async () => {
    const { node } = await elected();
    // A response from an unknown peer, and a local message type from the network.
    node.step(message({ type: 'MsgAppResp', from: 9, to: 1, term: 2, index: 2 }));
    node.step(message({ type: 'MsgHup', from: 2, to: 1 }));
    expect(node.status().softState).toEqual({ lead: 1, raftState: 'StateLeader' });
    expect(node.status().hardState.term).toBe(2);
  });

  it('rejects bootstrapping without peers', () => {
    expect(() => new Node(config(new MemoryStorage()), [])).toThrow(RaftError);
  });
});

describe('Node with asyncStorageWrites', () => {
  it('hands out Readys without advance() and takes storage responses through step()', async () => {
    const storage = new MemoryStorage();
    const node = new Node(config(storage, { asyncStorageWrites: true }), [{ id: 1 }]);
    const applied: number[] = [];
    for (let round = 0; applied.at(-1) !== 2; round++) {
      expect(round).toBeLessThan(20);
      // A node campaigns only once its bootstrap conf change is applied.
      if (applied.length === 1 && node.status().softState.raftState === 'StateFollower') node.campaign();
      const rd = await node.ready();
      for (const m of rd.messages) {
        if (m.to === LOCAL_APPEND_THREAD) {
          if (m.snapshot) storage.applySnapshot(m.snapshot);
          storage.append(m.entries);
          if (m.term !== 0) storage.setHardState({ term: m.term, vote: m.vote, commit: m.commit });
        } else if (m.to === LOCAL_APPLY_THREAD) {
          for (const e of m.entries) {
            if (e.type !== 'EntryNormal') node.applyConfChange(decodeConfChangeEntry(e));
            applied.push(e.index);
          }
        }
        for (const resp of m.responses) node.step(resp);
      }
    }
    expect(() => node.advance()).toThrow(/asyncStorageWrites/);
    expect(applied).toEqual([1, 2]);
    expect(node.status().softState.raftState).toBe('StateLeader');
    expect(node.status().hardState).toEqual({ term: 2, vote: 1, commit: 2 });
  });
});
