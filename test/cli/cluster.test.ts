import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/args.js';
import {
  type ClusterFile,
  clusterDirFor,
  clustersRoot,
  findFreePorts,
  isNodeAlive,
  prepareCluster,
  readClusterFile,
  writeClusterFile,
} from '../../src/cli/cluster.js';
import { resolveTarget } from '../../src/cli/connect.js';
import { CliError } from '../../src/cli/exit.js';
import { DEFAULT_SETTINGS } from '../../src/cli/settings.js';

const tmp = mkdtempSync(join(tmpdir(), 'raftctl-cluster-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const file = (dir: string): ClusterFile => ({
  name: 'c',
  nodes: [1, 2].map((id) => ({
    id,
    address: `127.0.0.1:${7000 + id}`,
    dataDir: join(dir, `n${id}`),
    logFile: join(dir, `n${id}`, 'node.log'),
  })),
  allowFaults: true,
  tickMs: 20,
  createdAt: 'now',
});

describe('data dirs', () => {
  it('follows XDG_DATA_HOME, else ~/.local/share', () => {
    expect(clustersRoot({ XDG_DATA_HOME: '/d' })).toBe('/d/raftctl/clusters');
    expect(clustersRoot({})).toMatch(/\.local\/share\/raftctl\/clusters$/);
    expect(clusterDirFor({ name: 'big' }, { XDG_DATA_HOME: '/d' })).toBe('/d/raftctl/clusters/big');
    expect(clusterDirFor({}, { XDG_DATA_HOME: '/d' })).toBe('/d/raftctl/clusters/default');
    expect(clusterDirFor({ 'data-dir': '/x', name: 'ignored' })).toBe('/x');
    expect(() => clusterDirFor({ name: '../up' })).toThrow(UsageError);
  });
});

describe('cluster.json', () => {
  it('round-trips and reports damage clearly', () => {
    const dir = join(tmp, 'rt');
    expect(readClusterFile(dir)).toBeUndefined();
    writeClusterFile(dir, file(dir));
    expect(readClusterFile(dir)).toEqual(file(dir));
    writeFileSync(join(dir, 'cluster.json'), '{"name":1}');
    expect(() => readClusterFile(dir)).toThrow(/cluster.json is damaged \(name: .*--fresh/);
    writeFileSync(join(dir, 'cluster.json'), '{');
    expect(() => readClusterFile(dir)).toThrow(CliError);
  });

  it('prepareCluster creates N nodes on distinct free ports, then resumes', async () => {
    const dir = join(tmp, 'prep');
    const lines: string[] = [];
    const opts = {
      size: 3,
      name: 'p',
      dir,
      fresh: false,
      tickMs: 20,
      basePort: 0,
      token: undefined,
      timeoutMs: 1000,
      say: (l: string) => lines.push(l),
    };
    const a = await prepareCluster(opts);
    expect(a.resumed).toBe(false);
    expect(a.file.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    expect(new Set(a.file.nodes.map((n) => n.address)).size).toBe(3);
    expect(a.file.nodes[0]!.logFile).toBe(join(dir, 'n1', 'node.log'));
    const b = await prepareCluster({ ...opts, size: 5 });
    expect(b.resumed).toBe(true);
    expect(b.file).toEqual(a.file);
    expect(lines[0]).toMatch(/resuming cluster 'p' with its 3 nodes/);
    const c = await prepareCluster({ ...opts, fresh: true });
    expect(c.resumed).toBe(false);
    expect(c.file.createdAt).not.toBe('');
  });

  it('a node without a live pid is not alive', () => {
    const n = file(tmp).nodes[0]!;
    expect(isNodeAlive(n)).toBe(false);
    // Our own pid is alive, but /proc shows it is not that node's process.
    expect(isNodeAlive({ ...n, pid: process.pid })).toBe(false);
  });

  it('findFreePorts returns distinct ports, from a base when given', async () => {
    const ports = await findFreePorts(4);
    expect(new Set(ports).size).toBe(4);
    const based = await findFreePorts(2, 42000, [42000]);
    expect(based[0]).toBeGreaterThan(42000);
  });
});

describe('resolveTarget', () => {
  const dir = join(tmp, 'target');
  writeClusterFile(dir, { ...file(dir), token: 'tok' });
  const s = { ...DEFAULT_SETTINGS };

  it('prefers --endpoints, then RAFTCTL_ENDPOINTS, then the last cluster', () => {
    expect(resolveTarget({ endpoints: 'h:1,h:2' }, s, { RAFTCTL_ENDPOINTS: 'x:1' }).endpoints).toEqual([
      'h:1',
      'h:2',
    ]);
    // A repeated --endpoints (`-e h:1 -e h:2,h:3`) adds up.
    expect(resolveTarget({ endpoints: ['h:1', 'h:2,h:3'] }, s, {}).endpoints).toEqual(['h:1', 'h:2', 'h:3']);
    expect(resolveTarget({}, s, { RAFTCTL_ENDPOINTS: 'x:1', RAFTCTL_TOKEN: 't' })).toMatchObject({
      endpoints: ['x:1'],
      token: 't',
      cluster: undefined,
    });
    const t = resolveTarget({}, { ...s, lastCluster: dir }, {});
    expect(t.endpoints).toEqual(['127.0.0.1:7001', '127.0.0.1:7002']);
    expect(t.token).toBe('tok');
    expect(t.cluster?.dir).toBe(dir);
    expect(resolveTarget({ 'data-dir': dir }, s, { RAFTCTL_ENDPOINTS: 'x:1' }).cluster?.dir).toBe(dir);
  });

  it('explains what to do when there is no cluster', () => {
    expect(() => resolveTarget({}, s, { XDG_DATA_HOME: join(tmp, 'none') })).toThrow(
      /start one with 'raftctl up'/,
    );
    expect(() => resolveTarget({ endpoints: 'nohost' }, s, {})).toThrow(UsageError);
  });
});
