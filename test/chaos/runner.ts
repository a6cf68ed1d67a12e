// The chaos runner: a cluster of real node processes, concurrent clients recording a
// history, and a seeded schedule of faults; then heal, converge and check.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ControlClient, ControlError } from '../../src/client/client.js';
import type { NodeState } from '../../src/protocol/control.js';
import { mulberry32 } from '../support/random.js';
import { ChaosCluster, type ChaosNode, killOrphanNodes, type NodeUnexpectedExit, sleep } from './cluster.js';
import {
  checkHistory,
  describeOp,
  type HistoryOp,
  type KvOp,
  type KvOutcome,
  type Value,
} from './linearizability.js';

export const FAULT_KINDS = [
  'kill',
  'kill-leader',
  'kill-minority',
  'kill-all',
  'power-loss',
  'partition',
  'partition-leader',
  'bridge',
  'drop',
  'delay',
  'transfer',
  'member-replace',
  'learner',
  'snapshot',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  nodes: number;
  durationMs: number;
  seed: number;
  faults: FaultKind[];
  clients: number;
  keys: number;
  tickMs: number;
  snapshotEvery: number;
  snapshotCatchUp: number;
  requestTimeoutMs: number;
  /** Where to write the JSON report; undefined = do not write one. */
  reportDir?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export const DEFAULT_OPTIONS: Omit<ChaosOptions, 'seed'> = {
  nodes: 3,
  durationMs: 60_000,
  faults: [...FAULT_KINDS],
  clients: 6,
  keys: 3,
  tickMs: 20,
  snapshotEvery: 200,
  snapshotCatchUp: 50,
  requestTimeoutMs: 2000,
  reportDir: resolve(import.meta.dirname, 'results'),
};

export interface FaultRecord {
  kind: FaultKind;
  /** ms since the run started. */
  at: number;
  ms: number;
  detail: string;
  error?: string;
}

export interface ChaosReport {
  seed: number;
  nodes: number;
  durationMs: number;
  faultsEnabled: FaultKind[];
  startedAt: string;
  elapsedMs: number;
  ops: {
    total: number;
    ok: number;
    failed: number;
    indeterminate: number;
    byKind: Record<string, { ok: number; failed: number; indeterminate: number }>;
    uniqueWritesAcked: number;
  };
  faults: FaultRecord[];
  faultCounts: Record<string, number>;
  faultErrors: number;
  linearizability: {
    ok: boolean;
    keys: number;
    ops: number;
    unknownKeys: string[];
    failure?: { key: string; explanation: string; minimal: HistoryOp[] };
  };
  lostAckedWrites: { key: string; value: string; missingOn: Record<number, Value> }[];
  divergence: { key: string; values: Record<number, Value> }[];
  converged: boolean;
  applied: Record<number, number>;
  kvKeys: Record<number, number>;
  unexpectedExits: NodeUnexpectedExit[];
  violations: string[];
  dataDir?: string;
  reportFile?: string;
}

const DEFINITE_FAILURES = new Set([
  'no_leader',
  'proposal_dropped',
  'not_leader',
  'bad_args',
  'unknown_command',
]);

interface UniqueWrite {
  key: string;
  value: string;
  acked: boolean | undefined;
}

export async function runChaos(input: Partial<ChaosOptions> & { seed: number }): Promise<ChaosReport> {
  const o: ChaosOptions = { ...DEFAULT_OPTIONS, ...input };
  const log = o.log ?? (() => {});
  const rand = mulberry32(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const shuffle = <T>(xs: T[]): T[] => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };

  killOrphanNodes(log);
  const cluster = new ChaosCluster({
    nodes: o.nodes,
    tickMs: o.tickMs,
    snapshotEvery: o.snapshotEvery,
    snapshotCatchUp: o.snapshotCatchUp,
    requestTimeoutMs: o.requestTimeoutMs,
    keepDataDir: true,
  });
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const startedAt = new Date().toISOString();
  const history: HistoryOp[] = [];
  const uniques: UniqueWrite[] = [];
  const stats: ChaosReport['ops'] = {
    total: 0,
    ok: 0,
    failed: 0,
    indeterminate: 0,
    byKind: {},
    uniqueWritesAcked: 0,
  };
  const count = (kind: string, what: 'ok' | 'failed' | 'indeterminate') => {
    stats.total++;
    stats[what]++;
    stats.byKind[kind] ??= { ok: 0, failed: 0, indeterminate: 0 };
    stats.byKind[kind][what]++;
  };
  const faults: FaultRecord[] = [];
  const keys = Array.from({ length: o.keys }, (_, i) => `k${i}`);
  let opId = 0;
  let stopClients = false;
  let stopFaults = false;
  const aborted = () => o.signal?.aborted === true;

  // ---- Operator helpers ---------------------------------------------------------------

  const cmd = async <T>(n: ChaosNode, name: string, args: object, timeoutMs = 3000): Promise<T> => {
    const c = new ControlClient();
    try {
      await c.connect(n.address, { timeoutMs: 1000 });
      // biome-ignore lint/suspicious/noExplicitAny: generic operator call
      return (await (c.command as any)(name, args, { timeoutMs })) as T;
    } finally {
      await c.close().catch(() => {});
    }
  };

  const statuses = async (): Promise<Map<number, NodeState>> => {
    const out = new Map<number, NodeState>();
    await Promise.all(
      cluster.live().map(async (n) => {
        const s = await cluster.status(n, 1000);
        if (s) out.set(n.id, s);
      }),
    );
    return out;
  };

  const findLeader = async (timeoutMs = 8000): Promise<ChaosNode | undefined> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !aborted()) {
      const st = await statuses();
      let best: NodeState | undefined;
      for (const s of st.values()) if (s.role === 'leader' && (!best || s.term > best.term)) best = s;
      if (best) {
        const agree = [...st.values()].filter((s) => s.leader === best.id && s.term === best.term).length;
        if (agree > cluster.members().length / 2) return cluster.nodes.get(best.id);
      }
      await sleep(100);
    }
    return undefined;
  };

  const healAll = async () => {
    await Promise.all(cluster.live().map((n) => cmd(n, 'fault', { kind: 'heal' }).catch(() => undefined)));
  };

  const isolate = async (a: ChaosNode[], b: ChaosNode[]) => {
    const ids = (xs: ChaosNode[]) => xs.map((x) => x.id);
    await Promise.all([
      ...a.map((n) => cmd(n, 'fault', { kind: 'isolate', peers: ids(b) })),
      ...b.map((n) => cmd(n, 'fault', { kind: 'isolate', peers: ids(a) })),
    ]);
  };

  const restartAll = async () => {
    for (const n of cluster.members()) if (!n.proc) await cluster.restart(n);
  };

  const leaderCall = async <T>(name: string, args: object, timeoutMs = 4000): Promise<T> => {
    let last: unknown;
    for (let i = 0; i < 5; i++) {
      const l = await findLeader();
      if (!l) throw new Error(`${name}: no leader`);
      try {
        return await cmd<T>(l, name, args, timeoutMs);
      } catch (err) {
        last = err;
        await sleep(200);
      }
    }
    throw last;
  };

  const waitMembership = async (pred: (s: NodeState) => boolean, timeoutMs = 8000): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await findLeader(2000);
      if (l) {
        const s = await cluster.status(l);
        if (s && pred(s)) return true;
      }
      await sleep(100);
    }
    return false;
  };

  const waitCaughtUp = async (n: ChaosNode, timeoutMs = 10_000): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await findLeader(2000);
      const [ls, ns] = l ? await Promise.all([cluster.status(l), cluster.status(n)]) : [];
      if (ls && ns && ns.applied + 20 >= ls.commit) return true;
      await sleep(150);
    }
    return false;
  };

  /** Removes a member; it stops itself once it applies its removal (or we kill it). */
  const removeMember = async (victim: ChaosNode): Promise<string> => {
    // It stops itself (exit code 0) when it applies its removal: expected from now on.
    victim.expectExit = true;
    try {
      await leaderCall('member-remove', { id: victim.id }, 5000);
    } catch (err) {
      // The outcome is unknown: look at the configuration.
      if (!(await waitMembership((s) => !s.config.voters.includes(victim.id), 3000))) {
        victim.expectExit = false;
        throw err;
      }
    }
    cluster.markRemoved(victim);
    await sleep(500);
    await cluster.kill(victim);
    return `removed ${victim.id}`;
  };

  // ---- Fault episodes ---------------------------------------------------------------

  const episode = async (kind: FaultKind): Promise<string> => {
    const members = cluster.members();
    switch (kind) {
      case 'kill': {
        const v = pick(members);
        await cluster.kill(v);
        await sleep(between(300, 2500));
        await cluster.restart(v);
        return `kill -9 node ${v.id}, restart`;
      }
      case 'kill-leader': {
        const v = (await findLeader()) ?? pick(members);
        await cluster.kill(v);
        await sleep(between(300, 2500));
        await cluster.restart(v);
        return `kill -9 leader ${v.id}, restart`;
      }
      case 'kill-minority': {
        const vs = shuffle(members).slice(0, Math.max(1, Math.floor((members.length - 1) / 2)));
        await Promise.all(vs.map((v) => cluster.kill(v)));
        await sleep(between(300, 2500));
        for (const v of vs) await cluster.restart(v);
        return `kill -9 nodes ${vs.map((v) => v.id).join(',')}, restart`;
      }
      case 'kill-all': {
        await Promise.all(members.map((v) => cluster.kill(v)));
        await sleep(between(100, 1000));
        await Promise.all(members.map((v) => cluster.restart(v)));
        return `kill -9 all nodes ${members.map((v) => v.id).join(',')}, restart`;
      }
      case 'power-loss': {
        const v = rand() < 0.4 ? ((await findLeader()) ?? pick(members)) : pick(members);
        await cluster.kill(v);
        const cut = cluster.tearWal(v, rand);
        await sleep(between(100, 1000));
        await cluster.restart(v);
        return `kill -9 node ${v.id}, tore the last ${cut} bytes of its WAL records, restart`;
      }
      case 'partition': {
        const s = shuffle(members);
        const k = between(1, Math.floor((s.length - 1) / 2));
        const minority = s.slice(0, k);
        const majority = s.slice(k);
        await isolate(minority, majority);
        await sleep(between(1000, 4000));
        await healAll();
        return `partition {${minority.map((n) => n.id)}} | {${majority.map((n) => n.id)}}`;
      }
      case 'partition-leader': {
        const l = (await findLeader()) ?? pick(members);
        await isolate(
          [l],
          members.filter((n) => n !== l),
        );
        await sleep(between(1000, 4000));
        await healAll();
        return `leader ${l.id} isolated`;
      }
      case 'bridge': {
        const s = shuffle(members);
        const bridge = s[0]!;
        const rest = s.slice(1);
        const half = Math.ceil(rest.length / 2);
        const a = rest.slice(0, half);
        const b = rest.slice(half);
        await isolate(a, b);
        await sleep(between(1000, 4000));
        await healAll();
        return `bridge ${bridge.id} between {${a.map((n) => n.id)}} and {${b.map((n) => n.id)}}`;
      }
      case 'drop': {
        const p = Math.round((0.1 + rand() * 0.4) * 100) / 100;
        const vs = shuffle(cluster.live()).slice(0, between(1, cluster.live().length));
        await Promise.all(vs.map((n) => cmd(n, 'fault', { kind: 'drop', probability: p })));
        await sleep(between(1000, 4000));
        await healAll();
        return `drop ${p} on nodes ${vs.map((n) => n.id)}`;
      }
      case 'delay': {
        const ms = between(10, 120);
        const vs = shuffle(cluster.live()).slice(0, between(1, cluster.live().length));
        await Promise.all(vs.map((n) => cmd(n, 'fault', { kind: 'delay', ms })));
        await sleep(between(1000, 4000));
        await healAll();
        return `delay ${ms} ms on nodes ${vs.map((n) => n.id)}`;
      }
      case 'transfer': {
        const done: string[] = [];
        for (let i = between(1, 3); i > 0; i--) {
          const l = await findLeader();
          if (!l) break;
          const others = cluster.members().filter((n) => n !== l && n.proc);
          if (others.length === 0) break;
          const to = pick(others);
          await cmd(l, 'transfer', { to: to.id });
          done.push(`${l.id}→${to.id}`);
          await sleep(between(200, 1000));
        }
        return `leadership transfer ${done.join(', ')}`;
      }
      case 'member-replace': {
        const victim = rand() < 0.3 ? ((await findLeader()) ?? pick(members)) : pick(members);
        await removeMember(victim);
        const fresh = await cluster.addNode();
        await leaderCall('member-add', { id: fresh.id, address: fresh.address, learner: false }, 5000);
        await cluster.spawnNode(fresh);
        await waitCaughtUp(fresh);
        return `removed node ${victim.id}, added node ${fresh.id} (fresh data dir, --join)`;
      }
      case 'learner': {
        const fresh = await cluster.addNode();
        await leaderCall('member-add', { id: fresh.id, address: fresh.address, learner: true }, 5000);
        await cluster.spawnNode(fresh);
        const caught = await waitCaughtUp(fresh);
        await leaderCall('member-promote', { id: fresh.id }, 5000);
        const victim = pick(members);
        await removeMember(victim);
        return `learner ${fresh.id} added${caught ? '' : ' (not caught up in time)'} and promoted; removed node ${victim.id}`;
      }
      case 'snapshot': {
        const vs = shuffle(cluster.live()).slice(0, between(1, cluster.live().length));
        const r = await Promise.all(
          vs.map((n) =>
            cmd<{ index: number }>(n, 'snapshot', {})
              .then((s) => `${n.id}@${s.index}`)
              .catch(() => `${n.id}:-`),
          ),
        );
        return `snapshot on ${r.join(', ')}`;
      }
    }
  };

  // ---- Clients ----------------------------------------------------------------------

  const worker = async (w: number): Promise<void> => {
    const clientId = `c${w}`;
    const wr = mulberry32(o.seed * 31 + w + 1);
    let client: ControlClient | undefined;
    let n = 0;
    const lastSeen = new Map<string, Value>();
    const drop = async () => {
      const c = client;
      client = undefined;
      await c?.close().catch(() => {});
    };
    while (!stopClients) {
      if (!client?.connected) {
        await drop();
        const live = cluster.live();
        if (live.length === 0) {
          await sleep(50);
          continue;
        }
        const target = live[Math.floor(wr() * live.length)]!;
        const c = new ControlClient();
        try {
          await c.connect(target.address, { timeoutMs: 1000 });
          client = c;
        } catch {
          await c.close().catch(() => {});
          await sleep(50);
          continue;
        }
      }
      const r = wr();
      const key = keys[Math.floor(wr() * keys.length)]!;
      const value = `${clientId}-${++n}`;
      let op: KvOp;
      let hkey = key;
      let unique: UniqueWrite | undefined;
      if (r < 0.4) op = { kind: 'get' };
      else if (r < 0.62) op = { kind: 'put', value };
      else if (r < 0.82) {
        const expected = wr() < 0.8 ? (lastSeen.get(key) ?? null) : null;
        op = { kind: 'cas', expected, value };
      } else if (r < 0.87) op = { kind: 'delete' };
      else {
        hkey = `u/${clientId}/${n}`;
        op = { kind: 'put', value };
        unique = { key: hkey, value, acked: undefined };
        uniques.push(unique);
      }
      const h: HistoryOp = { id: ++opId, clientId, key: hkey, op, call: now() };
      const timeoutMs = o.requestTimeoutMs + 1000;
      try {
        let result: KvOutcome;
        switch (op.kind) {
          case 'get': {
            const v = (await client.command('get', { key: hkey }, { timeoutMs })) as {
              found: boolean;
              value?: string;
            };
            const val = v.found ? (v.value ?? '') : null;
            result = { kind: 'get', value: val };
            lastSeen.set(key, val);
            break;
          }
          case 'put':
            await client.command('put', { key: hkey, value: op.value }, { timeoutMs });
            result = { kind: 'put' };
            if (!unique) lastSeen.set(key, op.value);
            break;
          case 'delete': {
            const v = (await client.command('delete', { key: hkey }, { timeoutMs })) as { deleted?: number };
            result = v.deleted === undefined ? { kind: 'delete' } : { kind: 'delete', deleted: v.deleted };
            lastSeen.set(key, null);
            break;
          }
          case 'cas': {
            const v = (await client.command(
              'cas',
              { key: hkey, expected: op.expected, value: op.value },
              { timeoutMs },
            )) as { ok: boolean; current?: { value: string } };
            result = { kind: 'cas', ok: v.ok };
            lastSeen.set(key, v.ok ? op.value : (v.current?.value ?? null));
            break;
          }
        }
        h.ret = now();
        h.result = result;
        history.push(h);
        if (unique) {
          unique.acked = true;
          stats.uniqueWritesAcked++;
        }
        count(unique ? 'put-unique' : op.kind, 'ok');
      } catch (err) {
        const code = err instanceof ControlError ? err.code : 'internal';
        if (DEFINITE_FAILURES.has(code)) {
          // Refused before it was proposed: it did not happen.
          if (unique) unique.acked = false;
          count(unique ? 'put-unique' : op.kind, 'failed');
          if (code === 'no_leader' || code === 'proposal_dropped') await sleep(20);
        } else {
          // timeout, unavailable (dropped connection), internal: the outcome is unknown.
          history.push(h);
          count(unique ? 'put-unique' : op.kind, 'indeterminate');
          await drop();
        }
      }
    }
    await drop();
  };

  // ---- The run ------------------------------------------------------------------------

  const violations: string[] = [];
  let report: ChaosReport | undefined;
  try {
    log(`chaos: seed ${o.seed}, ${o.nodes} nodes, ${o.durationMs} ms, faults ${o.faults.join(',')}`);
    log(`chaos: data in ${cluster.dir}`);
    await cluster.start();
    if (!(await findLeader(15_000))) throw new Error('the cluster elected no leader at start');
    const workers = Array.from({ length: o.clients }, (_, i) => worker(i));

    const faultLoop = async () => {
      await sleep(1000);
      while (!stopFaults && !aborted() && now() < o.durationMs - 3000) {
        const kind = pick(o.faults);
        const at = now();
        const rec: FaultRecord = { kind, at: Math.round(at), ms: 0, detail: '' };
        try {
          await restartAll();
          if (!(await findLeader(10_000))) rec.error = 'no leader before the fault';
          rec.detail = await episode(kind);
        } catch (err) {
          rec.error = (err as Error).message;
        }
        try {
          await healAll();
          await restartAll();
        } catch (err) {
          rec.error = `${rec.error ?? ''} heal: ${(err as Error).message}`;
        }
        rec.ms = Math.round(now() - at);
        faults.push(rec);
        log(
          `  ${(at / 1000).toFixed(1)}s ${kind}: ${rec.detail}${rec.error ? ` [error: ${rec.error}]` : ''}`,
        );
        await sleep(between(300, 1500));
      }
    };
    await faultLoop();
    // Let the clients run a little on a healed cluster, then stop them.
    await healAll();
    await restartAll();
    await findLeader(10_000);
    const tail = Math.max(0, o.durationMs - now());
    await sleep(Math.min(tail, 2000) + (aborted() ? 0 : 500));
    stopClients = true;
    await Promise.all(workers);

    // ---- Convergence -----------------------------------------------------------------
    await findLeader(15_000);
    let converged = false;
    let last = new Map<number, NodeState>();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      last = await statuses();
      const vals = [...last.values()];
      if (
        vals.length === cluster.members().length &&
        vals.every((s) => s.applied === vals[0]!.applied && s.commit === vals[0]!.commit && s.leader !== 0)
      ) {
        converged = true;
        break;
      }
      await sleep(200);
    }
    if (!converged) violations.push('applied indexes did not converge within 30 s after healing');

    // Final linearizable reads of the registers, part of the checked history.
    for (const n of cluster.live()) {
      for (const key of keys) {
        const h: HistoryOp = { id: ++opId, clientId: `final@${n.id}`, key, op: { kind: 'get' }, call: now() };
        try {
          const v = await cmd<{ found: boolean; value?: string }>(n, 'get', { key }, 5000);
          h.ret = now();
          h.result = { kind: 'get', value: v.found ? (v.value ?? '') : null };
          history.push(h);
        } catch (err) {
          violations.push(`final read of ${key} on node ${n.id} failed: ${(err as Error).message}`);
        }
      }
    }

    // Replica states: serializable reads of every key we ever wrote, on every node.
    const allKeys = [...keys, ...uniques.filter((u) => u.acked !== false).map((u) => u.key)];
    const states = new Map<number, Map<string, Value>>();
    await Promise.all(
      cluster.live().map(async (n) => {
        const c = new ControlClient();
        const m = new Map<string, Value>();
        try {
          await c.connect(n.address, { timeoutMs: 2000 });
          // At most 200 in flight: a connection may have 256.
          for (let i = 0; i < allKeys.length; i += 200) {
            const batch = allKeys.slice(i, i + 200);
            const vals = await Promise.all(
              batch.map((key) =>
                (
                  c.command('get', { key, serializable: true }, { timeoutMs: 10_000 }) as Promise<{
                    found: boolean;
                    value?: string;
                  }>
                ).then((v) => (v.found ? (v.value ?? '') : null)),
              ),
            );
            for (const [j, k] of batch.entries()) m.set(k, vals[j]!);
          }
          states.set(n.id, m);
        } catch (err) {
          violations.push(`could not read the state of node ${n.id}: ${(err as Error).message}`);
        } finally {
          await c.close().catch(() => {});
        }
      }),
    );
    const ids = [...states.keys()].sort((a, b) => a - b);
    const divergence: ChaosReport['divergence'] = [];
    for (const key of allKeys) {
      const values: Record<number, Value> = {};
      for (const id of ids) values[id] = states.get(id)!.get(key) ?? null;
      if (new Set(Object.values(values)).size > 1) divergence.push({ key, values });
    }
    const lost: ChaosReport['lostAckedWrites'] = [];
    for (const u of uniques) {
      if (u.acked !== true) continue;
      const missingOn: Record<number, Value> = {};
      for (const id of ids) {
        const v = states.get(id)!.get(u.key) ?? null;
        if (v !== u.value) missingOn[id] = v;
      }
      if (Object.keys(missingOn).length > 0) lost.push({ key: u.key, value: u.value, missingOn });
    }
    const kvKeys: Record<number, number> = {};
    const applied: Record<number, number> = {};
    for (const [id, s] of last) {
      kvKeys[id] = s.kvKeys;
      applied[id] = s.applied;
    }
    if (converged && new Set(Object.values(kvKeys)).size > 1) {
      violations.push(`replicas hold different numbers of keys: ${JSON.stringify(kvKeys)}`);
    }
    if (divergence.length > 0) violations.push(`${divergence.length} keys differ between replicas`);
    if (lost.length > 0) violations.push(`${lost.length} acknowledged writes lost`);

    const lin = checkHistory(history);
    if (!lin.ok) violations.push(`not linearizable: key ${lin.failure!.key}`);
    if (lin.unknownKeys.length > 0)
      log(`chaos: linearizability undecided (step budget) for ${lin.unknownKeys}`);
    for (const e of cluster.unexpectedExits) {
      violations.push(`node ${e.id} exited unexpectedly (code ${e.code}, signal ${e.signal})`);
    }

    const faultCounts: Record<string, number> = {};
    for (const f of faults) faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;
    report = {
      seed: o.seed,
      nodes: o.nodes,
      durationMs: o.durationMs,
      faultsEnabled: o.faults,
      startedAt,
      elapsedMs: Math.round(now()),
      ops: stats,
      faults,
      faultCounts,
      faultErrors: faults.filter((f) => f.error).length,
      linearizability: {
        ok: lin.ok,
        keys: lin.keys,
        ops: lin.ops,
        unknownKeys: lin.unknownKeys,
        ...(lin.failure
          ? {
              failure: {
                key: lin.failure.key,
                explanation: lin.failure.explanation,
                minimal: lin.failure.minimal,
              },
            }
          : {}),
      },
      lostAckedWrites: lost,
      divergence,
      converged,
      applied,
      kvKeys,
      unexpectedExits: cluster.unexpectedExits,
      violations,
    };
    if (violations.length > 0) report.dataDir = cluster.dir;
    return report;
  } finally {
    stopClients = true;
    stopFaults = true;
    // Keep the data (node logs, WAL) when something was found.
    cluster.opts.keepDataDir = violations.length > 0;
    await cluster.close();
    if (report && o.reportDir) {
      mkdirSync(o.reportDir, { recursive: true });
      const file = join(o.reportDir, `chaos-${startedAt.replace(/[:.]/g, '-')}-seed${o.seed}.json`);
      writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
      report.reportFile = file;
    }
  }
}

/** A human-readable summary of a report. */
export function summarize(r: ChaosReport): string {
  const lines = [
    `chaos run: seed ${r.seed}, ${r.nodes} nodes, ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `  ops: ${r.ops.total} (ok ${r.ops.ok}, failed ${r.ops.failed}, timeout/indeterminate ${r.ops.indeterminate}); ` +
      Object.entries(r.ops.byKind)
        .map(([k, v]) => `${k} ${v.ok}/${v.failed}/${v.indeterminate}`)
        .join(', '),
    `  faults: ${r.faults.length} (${Object.entries(r.faultCounts)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ')})${r.faultErrors ? `, ${r.faultErrors} with errors` : ''}`,
    `  linearizability: ${r.linearizability.ok ? 'ok' : 'VIOLATION'} (${r.linearizability.ops} ops on ${r.linearizability.keys} keys)`,
    `  acked unique writes: ${r.ops.uniqueWritesAcked}, lost: ${r.lostAckedWrites.length}`,
    `  replicas: ${r.converged ? 'converged' : 'NOT converged'} applied=${JSON.stringify(r.applied)} keys=${JSON.stringify(r.kvKeys)}, divergent keys: ${r.divergence.length}`,
    `  violations: ${r.violations.length === 0 ? 'none' : ''}`,
    ...r.violations.map((v) => `    - ${v}`),
  ];
  if (r.linearizability.failure) lines.push(r.linearizability.failure.explanation);
  for (const e of r.unexpectedExits) lines.push(`  node ${e.id} stderr:\n${e.stderrTail}`);
  if (r.dataDir) lines.push(`  data dirs kept in ${r.dataDir}`);
  if (r.reportFile) lines.push(`  report: ${r.reportFile}`);
  return lines.join('\n');
}

export { describeOp };
