import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Ring } from '../../src/ui/ring.js';
import { ClusterStore } from '../../src/ui/store.js';
import { entry, hello, leaderEvent, message, nodeState, ready, threeNodes } from './fixtures.js';

describe('Ring', () => {
  it('keeps the newest items up to its capacity', () => {
    const r = new Ring<number>(3);
    for (let i = 1; i <= 10; i++) r.push(i);
    expect(r.toArray()).toEqual([8, 9, 10]);
    expect(r.size).toBe(3);
    expect(r.total).toBe(10);
    expect(r.at(0)).toBe(8);
    expect(r.last()).toBe(10);
  });
});

describe('ClusterStore', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const mk = (opts = {}) => new ClusterStore({ now: () => Date.now(), ...opts });

  it('batches a burst into one publish and never publishes more than every 50 ms', () => {
    const store = mk();
    let renders = 0;
    store.subscribe(() => renders++);
    for (let i = 0; i < 10_000; i++) store.ingest({ type: 'event', event: message(1, 2) });
    expect(renders).toBe(0); // nothing synchronously: ingest never renders
    vi.advanceTimersByTime(0);
    expect(renders).toBe(1);
    expect(store.getSnapshot().eventsTotal).toBe(10_000);

    // A steady stream over one second: at most 20 publishes (+1 for the edge).
    renders = 0;
    for (let ms = 0; ms < 1000; ms++) {
      for (let k = 0; k < 20; k++) store.ingest({ type: 'event', event: message(2, 1) });
      vi.advanceTimersByTime(1);
    }
    vi.advanceTimersByTime(100);
    expect(renders).toBeLessThanOrEqual(21);
    expect(renders).toBeGreaterThanOrEqual(19);
    expect(store.getSnapshot().eventsTotal).toBe(30_000);
  });

  it('bounds the event ring, per-node events and log tails', () => {
    const store = mk({ eventCapacity: 100, nodeEventCapacity: 10, logTailCapacity: 5 });
    for (let i = 0; i < 1000; i++) store.ingest({ type: 'event', event: message(1, 2) });
    store.ingest({
      type: 'event',
      event: ready(1, { entries: Array.from({ length: 50 }, (_, i) => entry(i + 1)) }),
    });
    vi.advanceTimersByTime(60);
    const s = store.getSnapshot();
    expect(s.events).toHaveLength(100);
    expect(s.eventsTotal).toBe(1001);
    const n1 = s.nodes.find((n) => n.id === 1)!;
    expect(n1.events).toHaveLength(10);
    expect(n1.logTail.map((e) => e.index)).toEqual([46, 47, 48, 49, 50]);
  });

  it('truncates the log tail when an entry is overwritten by a newer term', () => {
    const store = mk();
    store.ingest({ type: 'event', event: ready(2, { entries: [entry(1, 1), entry(2, 1), entry(3, 1)] }) });
    store.ingest({ type: 'event', event: ready(2, { entries: [entry(2, 2)] }) });
    vi.advanceTimersByTime(60);
    const tail = store.getSnapshot().nodes[0]!.logTail;
    expect(tail.map((e) => `${e.term}/${e.index}`)).toEqual(['1/1', '2/2']);
  });

  it('derives leader, quorum, lag and the leader view of each follower', () => {
    const store = mk();
    for (const id of [1, 2, 3])
      store.ingest({ type: 'hello', address: `127.0.0.1:${7000 + id}`, hello: hello(id) });
    for (const s of threeNodes()) store.ingest({ type: 'state', state: s });
    vi.advanceTimersByTime(60);
    const s = store.getSnapshot();
    expect(s.leader).toEqual({ id: 1, term: 2 });
    expect(s.quorum).toEqual({ voters: 3, reachable: 3, needed: 2, ok: true });
    expect(s.nodes.map((n) => n.lag)).toEqual([0, 0, 2]);
    expect(s.nodes[2]!.progress?.state).toBe('StateProbe');
    expect(s.alerts).toEqual([]);

    store.ingest({ type: 'link', node: 2, status: 'down' });
    store.ingest({ type: 'state', state: nodeState(3, { faults: [{ kind: 'isolate', peers: [1, 2] }] }) });
    vi.advanceTimersByTime(60);
    const t = store.getSnapshot();
    expect(t.quorum.ok).toBe(false);
    expect(t.alerts.map((a) => a.text)).toEqual([
      'no quorum: 1/3 voters reachable, 2 needed',
      'n2 down',
      'n3 isolated',
    ]);
  });

  it('marks changed cells with the time of the change', () => {
    const store = mk();
    store.ingest({ type: 'state', state: nodeState(2, { commit: 10 }) });
    vi.advanceTimersByTime(100);
    store.ingest({ type: 'state', state: nodeState(2, { commit: 11, at: 1001 }) });
    vi.advanceTimersByTime(60);
    const n = store.getSnapshot().nodes[0]!;
    expect(n.changed.commit).toBeDefined();
    expect(n.changed.term).toBeUndefined();
  });

  describe('invariant monitor', () => {
    it('raises an alert for two leaders in one term', () => {
      const store = mk();
      store.ingest({ type: 'state', state: nodeState(1, { role: 'leader', term: 5, leader: 1 }) });
      store.ingest({ type: 'event', event: leaderEvent(3, 2, 5) });
      vi.advanceTimersByTime(60);
      const alerts = store.getSnapshot().alerts.filter((a) => a.invariant);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]!.text).toMatch(/two leaders in term 5: n1 .* and n2/);
    });

    it('raises an alert when a commit index goes back (per stream)', () => {
      const store = mk();
      store.ingest({ type: 'event', event: ready(2, { hardState: { term: 2, vote: 1, commit: 20 } }) });
      store.ingest({ type: 'event', event: ready(2, { hardState: { term: 2, vote: 1, commit: 19 } }) });
      vi.advanceTimersByTime(60);
      expect(store.getSnapshot().alerts.map((a) => a.text)).toContain(
        'n2 commit index went back from 20 to 19',
      );
    });

    it('does not compare a coalesced state frame with older queued events', () => {
      const store = mk();
      store.ingest({ type: 'state', state: nodeState(2, { commit: 30, at: 2000 }) });
      store.ingest({ type: 'event', event: ready(2, { hardState: { term: 2, vote: 1, commit: 25 } }) });
      store.ingest({ type: 'state', state: nodeState(2, { commit: 31, at: 2100 }) });
      // An older state frame (by the node's clock) arriving late is ignored too.
      store.ingest({ type: 'state', state: nodeState(2, { commit: 29, at: 1900 }) });
      vi.advanceTimersByTime(60);
      expect(store.getSnapshot().alerts.filter((a) => a.invariant)).toEqual([]);
    });

    it('raises an alert for different entries committed at one index', () => {
      const store = mk();
      store.ingest({ type: 'event', event: ready(1, { committed: [entry(7, 2, '"a"')] }) });
      store.ingest({ type: 'event', event: ready(2, { committed: [entry(7, 2, '"a"')] }) });
      vi.advanceTimersByTime(60);
      expect(store.getSnapshot().alerts).toEqual([]);
      store.ingest({ type: 'event', event: ready(3, { committed: [entry(7, 3, '"b"')] }) });
      vi.advanceTimersByTime(60);
      const texts = store.getSnapshot().alerts.map((a) => a.text);
      expect(texts).toHaveLength(1);
      expect(texts[0]).toContain('n1 and n3 committed different entries at index 7');
    });

    it('compares apply events by term', () => {
      const store = mk();
      store.ingest({ type: 'event', event: ready(1, { committed: [entry(9, 2)] }) });
      store.ingest({
        type: 'event',
        event: { seq: 1, at: 1, node: 2, kind: 'apply', index: 9, term: 4, op: 'put k' },
      });
      vi.advanceTimersByTime(60);
      expect(store.getSnapshot().alerts.some((a) => a.text.includes('index 9'))).toBe(true);
    });
  });

  it('keeps ingesting while paused but publishes nothing until resumed', () => {
    const store = mk();
    let renders = 0;
    store.subscribe(() => renders++);
    store.setPaused(true);
    expect(renders).toBe(1); // the PAUSED mark itself
    expect(store.getSnapshot().paused).toBe(true);
    for (let i = 0; i < 500; i++) store.ingest({ type: 'event', event: message(1, 2) });
    vi.advanceTimersByTime(1000);
    expect(renders).toBe(1);
    expect(store.getSnapshot().eventsTotal).toBe(0);
    expect(store.ingested).toBe(500);
    store.setPaused(false);
    expect(renders).toBe(2);
    expect(store.getSnapshot().eventsTotal).toBe(500);
    expect(store.getSnapshot().paused).toBe(false);
  });

  it('re-publishes once a highlight has expired even without new input', () => {
    const store = mk({ highlightMs: 500 });
    let renders = 0;
    store.subscribe(() => renders++);
    store.ingest({ type: 'state', state: nodeState(1) });
    vi.advanceTimersByTime(60);
    store.ingest({ type: 'state', state: nodeState(1, { term: 3, at: 1001 }) });
    vi.advanceTimersByTime(60);
    const before = renders;
    vi.advanceTimersByTime(600);
    expect(renders).toBe(before + 1);
  });
});

describe('ClusterStore publishing with fading highlights', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a pending highlight refresh does not hold back publishing new input', () => {
    const store = new ClusterStore({ now: () => Date.now(), highlightMs: 1500 });
    let renders = 0;
    store.subscribe(() => renders++);
    store.ingest({ type: 'state', state: nodeState(1, { commit: 1 }) });
    vi.advanceTimersByTime(60);
    // Commit changes every 10 ms for one second: highlights are always pending.
    for (let i = 0; i < 100; i++) {
      store.ingest({ type: 'state', state: nodeState(1, { commit: i + 2, at: 1000 + i }) });
      vi.advanceTimersByTime(10);
    }
    expect(renders).toBeGreaterThanOrEqual(18);
    expect(renders).toBeLessThanOrEqual(22);
  });
});
