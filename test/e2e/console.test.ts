// End to end, in a real terminal: three real nodes, `raftctl attach` inside tmux, keys sent
// with send-keys and the screen read with capture-pane. Needs a build (dist/) and tmux; with
// no tmux the suite is skipped with the reason printed (it installs nothing).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/client/client.js';
import type { NodeState } from '../../src/protocol/control.js';
import { opensslMissing, TestPki } from './certs.js';
import { TestCluster } from './harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/raftctl');

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const TMUX = hasTmux();
if (!TMUX) {
  // Printed so a skipped run says why; this test never installs anything.
  console.warn('test/e2e/console.test.ts: SKIPPED — tmux is not installed (apt-get install tmux to run it)');
}

const SOCKET = `raftctl-e2e-${process.pid}`;
const SESSION = 'console';

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
}

function screen(session = SESSION): string {
  return tmux('capture-pane', '-p', '-t', session);
}

function keys(...k: string[]): void {
  tmux('send-keys', '-t', SESSION, ...k);
}

function typeText(text: string): void {
  tmux('send-keys', '-t', SESSION, '-l', text);
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` passes; the failure names what the screen showed last. */
async function eventually<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== false && v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      let shown = '';
      try {
        shown = screen();
      } catch {}
      throw new Error(
        `timed out waiting for ${what}${last ? ` (${String(last)})` : ''}\n--- screen ---\n${shown}`,
      );
    }
    await sleep(150);
  }
}

/** The node table row of node `id` on screen. */
function row(s: string, id: number): string | undefined {
  return s.split('\n').find((l) => new RegExp(`^[▸ ] n${id}\\s`).test(l));
}

const captures: string[] = [];
function keep(label: string): void {
  captures.push(`=== ${label} ===\n${screen()}`);
}

describe.skipIf(!TMUX)('console in a real terminal (tmux)', () => {
  let dir: string;
  const nodes: ChildProcess[] = [];
  const ports: number[] = [];
  const clients = new Map<number, ControlClient>();

  const status = async (id: number): Promise<NodeState> => clients.get(id)!.command('status');

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/bundle/main.js'))) {
      throw new Error('dist/ is missing: run `npm run build` before this test');
    }
    dir = await mkdtemp(join(tmpdir(), 'raftctl-e2e-'));
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
    for (let i = 0; i < 3; i++) {
      const id = i + 1;
      const child = spawn(
        process.execPath,
        [
          BIN,
          'node',
          '--id',
          String(id),
          '--listen',
          `127.0.0.1:${ports[i]}`,
          '--peers',
          peers,
          '--data-dir',
          join(dir, `n${id}`),
          '--allow-faults',
          '--tick-ms',
          '20',
          '--quiet',
          // Without these a follower's campaign is ignored by peers that still hear from
          // the leader (the leader lease of CheckQuorum/PreVote), and `c` could not be shown
          // winning; `t` is the way to move leadership on a default cluster.
          '--no-check-quorum',
          '--no-pre-vote',
        ],
        { stdio: 'ignore' },
      );
      nodes.push(child);
    }
    for (let i = 0; i < 3; i++) {
      const c = new ControlClient();
      await eventually(`node ${i + 1} to accept connections`, async () => {
        await c.connect(`127.0.0.1:${ports[i]}`, { timeoutMs: 1000 });
        return true;
      });
      clients.set(i + 1, c);
    }
    await eventually('a leader', async () => (await status(1)).leader !== 0);

    // The console, as a user opens it, in a 100×30 terminal.
    // Its own settings dir: attach remembers the endpoints it was given, and the user's
    // settings are not the test's to change.
    const cmd = `cd ${ROOT} && env CI=false TERM=xterm-256color XDG_CONFIG_HOME=${join(dir, 'config')} ${process.execPath} ${BIN} attach 127.0.0.1:${ports[0]} --record ${join(dir, 'session.ndjson')}; sleep 5`;
    tmux('new-session', '-d', '-s', SESSION, '-x', '100', '-y', '30', cmd);
  }, 60_000);

  afterAll(async () => {
    try {
      if (captures.length > 0 && dir !== undefined)
        await writeFile(join(tmpdir(), `raftctl-e2e-screens-${process.pid}.txt`), captures.join('\n\n'));
    } catch {}
    try {
      tmux('kill-server');
    } catch {}
    await Promise.all([...clients.values()].map((c) => c.close()));
    for (const n of nodes) n.kill('SIGKILL');
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('shows three nodes and a leader', async () => {
    const leader = (await status(1)).leader;
    await eventually('three nodes and the leader on screen', () => {
      const s = screen();
      return (
        [1, 2, 3].every((id) => row(s, id) !== undefined) &&
        s.includes(`leader n${leader}`) &&
        /leader\s/.test(row(s, leader) ?? '') &&
        [1, 2, 3].filter((id) => /follower/.test(row(s, id) ?? '')).length === 2
      );
    });
    const s = screen();
    expect(s).toContain('quorum ok 3/3');
    expect(s).toMatch(/MsgHeartbeat/);
    keep('dashboard');
  }, 30_000);

  it('c on a selected follower makes it the leader', async () => {
    const before = await status(1);
    const follower = [1, 2, 3].find((id) => id !== before.leader)!;
    keys(String(follower));
    await eventually('the follower selected', () => row(screen(), follower)?.startsWith('▸'));
    keys('c');
    await eventually(`n${follower} leader on screen`, () => {
      const s = screen();
      return s.includes(`leader n${follower}`) && /leader\s/.test(row(s, follower) ?? '');
    });
    await eventually(
      `n${follower} leader per its status`,
      async () => (await status(follower)).role === 'leader',
    );
    await eventually('the campaign status line', () => screen().includes(`campaign → n${follower}: ok`));
    keep(`after c on n${follower}`);
  }, 30_000);

  it('p proposes a value and the entry is committed', async () => {
    keys('p');
    await eventually('the propose prompt', () => screen().includes('propose>'));
    typeText('hello-e2e');
    keys('Enter');
    await eventually('propose ok in the status line', () => /propose → n\d: ok/.test(screen()));
    // The leader's view shows the entry in its log tail with the committed mark.
    const leader = (await status(1)).leader;
    keys(String(leader));
    keys('Enter');
    await eventually('the committed entry in the node view', () =>
      screen()
        .split('\n')
        .some((l) => /^✓/.test(l) && l.includes('hello-e2e')),
    );
    keep(`node view of n${leader} after p`);
    keys('Escape');
    await eventually('back on the dashboard', () => screen().includes('Events [all]'));
  }, 30_000);

  it('x isolates the selected node and X heals it', async () => {
    const leader = (await status(1)).leader;
    const victim = [1, 2, 3].find((id) => id !== leader)!;
    keys(String(victim));
    keys('x');
    await eventually(`n${victim} isolated on screen`, () => {
      const s = screen();
      return /\biso\b/.test(row(s, victim) ?? '') && s.includes(`n${victim} isolated`);
    });
    expect((await status(victim)).faults.some((f) => f.kind === 'isolate')).toBe(true);
    keep(`after x on n${victim}`);
    keys('X');
    await eventually('healed on screen', () => {
      const s = screen();
      return (
        /\bup\b/.test(row(s, victim) ?? '') && !s.includes('isolated') && s.includes('heal → n1,n2,n3: ok')
      );
    });
    expect((await status(victim)).faults).toEqual([]);
    keep('after X');
  }, 30_000);

  it('q quits and gives the terminal back', async () => {
    keys('q');
    await eventually('the console to exit', () => !screen().includes('Events [all]'), 10_000);
  }, 20_000);

  it('replay plays the recording back, paused at first and then at the speed asked for', async () => {
    const file = join(dir, 'session.ndjson');
    const cmd = `cd ${ROOT} && env CI=false TERM=xterm-256color XDG_CONFIG_HOME=${join(dir, 'config')} ${process.execPath} ${BIN} replay ${file} --speed 8 --paused; sleep 5`;
    tmux('new-session', '-d', '-s', 'replay', '-x', '100', '-y', '30', cmd);
    try {
      const total = Number(
        await eventually(
          'the replay, paused at its start',
          () => /replay PAUSED ×8 0\.0s 0\/(\d+)/.exec(screen('replay'))?.[1],
        ),
      );
      expect(total).toBeGreaterThan(10);
      tmux('send-keys', '-t', 'replay', 'Space');
      // The session above ran for many seconds; at ×8 it ends well within the wait.
      await eventually(
        'the recording to play to its end, showing the three nodes and a leader',
        () => {
          const s = screen('replay');
          return (
            s.includes(`replay END ×8`) &&
            s.includes(`${total}/${total}`) &&
            [1, 2, 3].every((id) => row(s, id) !== undefined) &&
            /leader n[123]/.test(s)
          );
        },
        30_000,
      );
      tmux('send-keys', '-t', 'replay', 'q');
      await eventually('the replay to exit', () => !screen('replay').includes('replay END'), 10_000);
    } finally {
      try {
        tmux('kill-session', '-t', 'replay');
      } catch {}
    }
  }, 60_000);
});

describe.skipIf(!TMUX || opensslMissing() !== undefined)('console over TLS (tmux)', () => {
  it('attach --tls-ca shows every member up: the discovered ones are dialled over wss too', async () => {
    const pki = TestPki.create('console-ca');
    const node = pki.issue('node');
    const c = await TestCluster.create(3, { args: ['--tls-cert', node.cert, '--tls-key', node.key] });
    try {
      // The nodes trust the test CA for their peer links; the console gets it from --tls-ca.
      for (const n of c.nodes) n.start([], { env: { NODE_EXTRA_CA_CERTS: pki.ca } });
      await c.node(1).waitForLog(/listening on .*TLS/);
      const cmd = `cd ${ROOT} && env CI=false TERM=xterm-256color XDG_CONFIG_HOME=${join(c.root, 'config')} ${process.execPath} ${BIN} attach ${c.node(1).address} --tls-ca ${pki.ca}; sleep 5`;
      tmux('new-session', '-d', '-s', 'tls', '-x', '100', '-y', '30', cmd);
      await eventually(
        'three nodes up and a leader on screen',
        () => {
          const s = screen('tls');
          return [1, 2, 3].every((id) => /\bup\b/.test(row(s, id) ?? '')) && /leader n[123]/.test(s);
        },
        30_000,
      );
    } finally {
      try {
        tmux('kill-session', '-t', 'tls');
      } catch {}
      await c.destroy();
      pki.destroy();
    }
  }, 60_000);
});
