// Security of a real `raftctl node` process (issue 7): no start beyond loopback without a
// token (unless --insecure), the token on every door (control, peers, KV gateway), fault
// injection only with --allow-faults, key/value size limits, mutual TLS between peers and
// operators, and a corrupt snapshot refusing the start by name. Runs from dist/.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ControlClient, ControlError } from '../../src/client/client.js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../../src/protocol/control.js';
import { opensslMissing, TestPki } from './certs.js';
import {
  b64,
  freePorts,
  killAll,
  NodeProc,
  runCli,
  soloNodeArgs,
  TestCluster,
  TestResources,
  waitFor,
} from './harness.js';

const TOKEN = 'sekret-token-4c1d';
const res = new TestResources();
const clients: ControlClient[] = [];
const tempDir = (): string => res.tempDir('raftctl-sec-');

/** The environment of a node or CLI run, without a token inherited from the caller. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (extra.RAFTCTL_TOKEN === undefined) env.RAFTCTL_TOKEN = '';
  return env;
}

async function connect(address: string, opts: Parameters<ControlClient['connect']>[1] = {}) {
  const c = new ControlClient();
  clients.push(c);
  await c.connect(address, { timeoutMs: 3000, commandTimeoutMs: 5000, ...opts });
  return c;
}

/**
 * A control connection to a node serving TLS, once the cluster has a leader and every peer
 * link of the node is up (peers reach each other over wss).
 */
async function tlsClusterReady(
  address: string,
  opts: Parameters<ControlClient['connect']>[1],
): Promise<ControlClient> {
  const cl = await waitFor('a TLS control connection', () => connect(address, opts), { timeoutMs: 10_000 });
  await waitFor(
    'a leader with every peer link up, over TLS',
    async () => {
      const st = await cl.command('status');
      return st.leader !== 0 && st.transport.every((p) => p.connected);
    },
    { timeoutMs: 15_000 },
  );
  return cl;
}

/** One raw control frame exchange: hello (with the token), then `frame`; the first answer to it. */
async function rawCommand(address: string, token: string, frame: object): Promise<Record<string, unknown>> {
  const ws = new WebSocket(`ws://${address}/control`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const frames: Record<string, unknown>[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
    ws.send(JSON.stringify({ type: 'hello', version: 1, token }));
    ws.send(JSON.stringify(frame));
    return await waitFor('an answer to the raw frame', () =>
      frames.find((f) => f.type === 'result' || f.type === 'error'),
    );
  } finally {
    ws.terminate();
  }
}

afterEach(async (ctx) => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await res.cleanup(ctx.task.result?.state === 'fail');
});

afterAll(async () => {
  await killAll();
});

describe('no token beyond loopback', () => {
  async function wildcardNode(extra: string[], env: NodeJS.ProcessEnv = {}) {
    const [port] = await freePorts(1, '0.0.0.0');
    const dir = path.join(tempDir(), 'n1');
    const n = new NodeProc(1, '0.0.0.0', port!, dir, [
      '--peers',
      `1=127.0.0.1:${port}`,
      '--tick-ms',
      '20',
      ...extra,
    ]);
    n.start([], { env: cleanEnv(env) });
    return n;
  }

  it('refuses to start on 0.0.0.0 without a token, saying how to set one, and leaves no data dir', async () => {
    const n = await wildcardNode([]);
    const exit = await n.waitExit(10_000);
    expect(exit.code).toBe(1);
    expect(n.stderr).toMatch(/refusing to listen on 0\.0\.0\.0:\d+ without a cluster token/);
    expect(n.stderr).toContain('--token');
    expect(n.stderr).toContain('RAFTCTL_TOKEN');
    expect(n.stderr).toContain('--insecure');
    expect(n.stderr).not.toMatch(/^\s+at /m);
    expect(() => readdirSync(n.dataDir)).toThrow();
  });

  it('starts on 0.0.0.0 with RAFTCTL_TOKEN, and with --insecure (warning about it)', async () => {
    const withToken = await wildcardNode([], { RAFTCTL_TOKEN: TOKEN });
    await withToken.waitForLog(/listening on 0\.0\.0\.0:\d+/);
    await withToken.kill();
    const insecure = await wildcardNode(['--insecure']);
    await insecure.waitForLog(/listening on 0\.0\.0\.0:\d+/);
    expect(insecure.stderr).toMatch(/--insecure: no cluster token/);
    await insecure.kill();
  });

  it('refuses an empty --token as a usage error', async () => {
    const r = await runCli([...soloNodeArgs('127.0.0.1:1', tempDir()), '--token', ''], { timeoutMs: 10_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--token is empty/);
  });
});

describe('a node with a token', () => {
  async function tokenNode(extra: string[] = []) {
    const c = await TestCluster.create(1, { args: extra });
    res.track(c);
    const n = c.node(1);
    n.start([], { env: cleanEnv({ RAFTCTL_TOKEN: TOKEN }) });
    await n.waitForLog(/became leader/i, 10_000).catch(() => n.waitForLog(/listening on/));
    return n;
  }

  it('asks for the token on /control, /raft and the KV gateway, and never prints it', async () => {
    const n = await tokenNode();
    // Control: no token, wrong token → unauthorized; the right one works.
    for (const token of [undefined, 'wrong']) {
      const err = await connect(n.address, token === undefined ? {} : { token }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ControlError);
      expect((err as ControlError).code).toBe('unauthorized');
    }
    const c = await connect(n.address, { token: TOKEN });
    await waitFor('a leader', async () => (await c.command('status')).leader === 1);
    await c.command('put', { key: 'k', value: 'v' });

    // Peers: a handshake without the token (or with a wrong one) is refused with 403.
    for (const headers of [
      { 'x-raftctl-cluster': 'default', 'x-raftctl-from': '9' },
      { 'x-raftctl-cluster': 'default', 'x-raftctl-from': '9', 'x-raftctl-token': 'wrong' },
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`ws://${n.address}/raft`, { headers });
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('open', () => reject(new Error('the node accepted a peer without the token')));
        ws.on('error', () => {});
      });
      expect(status).toBe(403);
    }

    // Gateway: 401 without the token, 200 with it (Bearer or bare); /health stays open.
    const put = (headers: Record<string, string>) =>
      fetch(`http://${n.address}/v3/kv/put`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ key: b64('g'), value: b64('1') }),
      });
    const refused = await put({});
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: number }).code).toBe(16);
    expect((await put({ authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await put({ authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await put({ authorization: TOKEN })).status).toBe(200);
    expect((await fetch(`http://${n.address}/health`)).status).toBe(200);

    // The token is never written to stderr or the log file.
    expect(n.stderr).not.toContain(TOKEN);
    expect(n.logFile()).not.toContain(TOKEN);
  });

  it('refuses fault commands unless started with --allow-faults', async () => {
    const n = await tokenNode();
    const c = await connect(n.address, { token: TOKEN });
    const err = await c.command('fault', { kind: 'heal' }).catch((e: unknown) => e);
    expect((err as ControlError).code).toBe('faults_disabled');
    expect(c.hello?.allowFaults).toBe(false);
    // The CLI says how to enable them.
    const cli = await runCli([
      'fault',
      'drop',
      '1',
      '0.5',
      '--endpoints',
      n.address,
      '--token',
      TOKEN,
      '--timeout',
      '5s',
    ]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/--allow-faults/);
  });

  it('limits key and value sizes at propose time: bad_args on /control, 400 on the gateway', async () => {
    const n = await tokenNode();
    const c = await connect(n.address, { token: TOKEN });
    await waitFor('a leader', async () => (await c.command('status')).leader === 1);
    const bigKey = 'k'.repeat(MAX_KEY_BYTES + 1);
    // The client checks locally…
    const local = await c.command('put', { key: bigKey, value: 'v' }).catch((e: unknown) => e);
    expect((local as ControlError).code).toBe('bad_args');
    expect((local as ControlError).field).toBe('args.key');
    // …and so does the node, for clients that do not.
    const r = await rawCommand(n.address, TOKEN, {
      type: 'command',
      id: 7,
      command: 'put',
      args: { key: bigKey, value: 'v' },
    });
    expect(r).toMatchObject({
      type: 'result',
      id: 7,
      ok: false,
      error: { code: 'bad_args', field: 'args.key' },
    });
    expect(JSON.stringify(r)).toMatch(/at most 4096 bytes/);
    // Multi-byte characters count as their UTF-8 bytes: 1366 × 3 bytes > 4096.
    const wide = await c.command('put', { key: '€'.repeat(1366), value: 'v' }).catch((e: unknown) => e);
    expect((wide as ControlError).code).toBe('bad_args');
    await c.command('put', { key: 'k'.repeat(MAX_KEY_BYTES), value: 'v' });

    const gw = (body: object) =>
      fetch(`http://${n.address}/v3/kv/put`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify(body),
      });
    const keyTooBig = await gw({ key: b64(bigKey), value: b64('v') });
    expect(keyTooBig.status).toBe(400);
    expect(((await keyTooBig.json()) as { message: string }).message).toMatch(
      /key: keys are at most 4096 bytes/,
    );
    const valueTooBig = await gw({ key: b64('big'), value: b64('v'.repeat(MAX_VALUE_BYTES + 1)) });
    expect(valueTooBig.status).toBe(400);
    expect(((await valueTooBig.json()) as { message: string }).message).toMatch(/value: values are at most/);
    const atLimit = await gw({ key: b64('big'), value: b64('v'.repeat(MAX_VALUE_BYTES)) });
    expect(atLimit.status).toBe(200);
    // The node is still fine.
    expect(await c.command('get', { key: 'k'.repeat(MAX_KEY_BYTES) })).toMatchObject({
      found: true,
      value: 'v',
    });
  });
});

describe('corruption', () => {
  it('refuses to start when a bit of its only snapshot file is flipped, naming the file', async () => {
    const c = await TestCluster.create(1, { args: ['--snapshot-every', '100000'] });
    res.track(c);
    const n = c.node(1);
    n.start([], { env: cleanEnv() });
    await waitFor('a leader', async () => (await n.health()).leader === 1);
    const cl = await n.client();
    for (let i = 0; i < 10; i++) await cl.command('put', { key: `k${i}`, value: `v${i}` });
    await cl.command('snapshot');
    await n.kill('SIGTERM');
    const snapDir = path.join(n.dataDir, 'snap');
    const snaps = readdirSync(snapDir).filter((f) => f.endsWith('.snap'));
    expect(snaps).toHaveLength(1);
    const file = path.join(snapDir, snaps[0]!);
    const buf = readFileSync(file);
    buf[Math.floor(buf.length / 2)]! ^= 0x04;
    writeFileSync(file, buf);

    n.start([], { env: cleanEnv() });
    const exit = await n.waitExit(10_000);
    expect(exit.code).toBe(1);
    expect(n.stderr).toContain(file);
    expect(n.stderr).toMatch(/corrupt/);
    expect(n.stderr).not.toMatch(/^\s+at /m);
  });
});

const noOpenssl = opensslMissing();
if (noOpenssl !== undefined) process.stderr.write(`security.test.ts: ${noOpenssl}\n`);

describe.skipIf(noOpenssl !== undefined)('mutual TLS', () => {
  let pki: TestPki;
  let other: TestPki;

  afterAll(() => {
    pki?.destroy();
    other?.destroy();
  });

  it('runs a 3-node cluster over wss with client certificates, and refuses clients without one', async () => {
    pki = TestPki.create('ca');
    other = TestPki.create('other-ca');
    const nodeCert = pki.issue('node');
    const operator = pki.issue('operator');
    const stranger = other.issue('stranger');
    const c = await TestCluster.create(3, {
      args: ['--tls-cert', nodeCert.cert, '--tls-key', nodeCert.key, '--tls-ca', pki.ca],
    });
    res.track(c);
    for (const n of c.nodes) n.start([], { env: cleanEnv({ RAFTCTL_TOKEN: TOKEN }) });
    const tls = {
      ca: readFileSync(pki.ca),
      cert: readFileSync(operator.cert),
      key: readFileSync(operator.key),
    };
    const n1 = c.node(1);
    await n1.waitForLog(/listening on .*TLS, client certificates required/);
    // Peers reach each other over wss: a leader is elected and a write commits on 3 nodes.
    const cl = await tlsClusterReady(n1.address, { token: TOKEN, tls });
    expect(cl.hello?.nodeId).toBe(1);
    const leader = (await cl.command('status')).leader;
    const lc = await connect(c.node(leader).address, { token: TOKEN, tls });
    await lc.command('put', { key: 'secure', value: 'yes' });
    for (const n of c.nodes) {
      const x = await connect(n.address, { token: TOKEN, tls });
      await waitFor(`node ${n.id} to apply the write`, async () => {
        const r = await x.command('get', { key: 'secure', serializable: true });
        return (r as { found: boolean }).found;
      });
    }

    // Refused: plain ws, TLS without a client certificate, a certificate from another CA.
    expect(await connect(n1.address, { token: TOKEN }).catch((e: unknown) => e)).toBeInstanceOf(ControlError);
    const noCert = await connect(n1.address, { token: TOKEN, tls: { ca: tls.ca } }).catch((e: unknown) => e);
    expect((noCert as ControlError).code).toBe('unavailable');
    const wrongCa = await connect(n1.address, {
      token: TOKEN,
      tls: { ca: tls.ca, cert: readFileSync(stranger.cert), key: readFileSync(stranger.key) },
    }).catch((e: unknown) => e);
    expect((wrongCa as ControlError).code).toBe('unavailable');
    // https:// and wss:// addresses work too.
    const viaHttps = await connect(`https://${n1.address}`, { token: TOKEN, tls });
    expect(viaHttps.hello?.nodeId).toBe(1);

    // HTTPS gateway with the client certificate.
    const health = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: n1.port, path: '/health', ...tls }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(health).toBe(200);

    // The CLI connects with --tls-ca/--tls-cert/--tls-key.
    const cli = await runCli(
      [
        'get',
        'secure',
        '--endpoints',
        n1.address,
        '--token',
        TOKEN,
        '--tls-ca',
        pki.ca,
        '--tls-cert',
        operator.cert,
        '--tls-key',
        operator.key,
        '--timeout',
        '8s',
      ],
      { timeoutMs: 15_000 },
    );
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toContain('yes');
    expect(cli.code).toBe(0);
  }, 60_000);

  it('refuses to start with unreadable or invalid TLS files', async () => {
    pki ??= TestPki.create('ca');
    const garbage = path.join(tempDir(), 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const base = soloNodeArgs('127.0.0.1:1', tempDir());
    const missing = await runCli([...base, '--tls-cert', '/nonexistent.pem', '--tls-key', garbage]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read --tls-cert \/nonexistent\.pem: ENOENT/);
    const invalid = await runCli([...base, '--tls-cert', garbage, '--tls-key', garbage]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/invalid TLS material/);
    const half = await runCli([...base, '--tls-cert', garbage]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--tls-cert and --tls-key go together/);
  });
});

describe('attach over TLS', () => {
  /** The CLI's environment: no inherited token, and settings (attach remembers endpoints) in a temp dir. */
  const cliEnv = (): NodeJS.ProcessEnv => {
    const dir = tempDir();
    return cleanEnv({ XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_DATA_HOME: path.join(dir, 'data') });
  };

  it.skipIf(noOpenssl !== undefined)(
    '--once --json with --tls-ca discovers every member over wss; without it, says to pass --tls-ca',
    async () => {
      const pki = TestPki.create('attach-ca');
      try {
        const nodeCert = pki.issue('node');
        // TLS without client certificates; the nodes trust the test CA for their peer links
        // through Node's extra CAs, so `--tls-ca` is all an operator needs.
        const c = res.track(
          await TestCluster.create(3, { args: ['--tls-cert', nodeCert.cert, '--tls-key', nodeCert.key] }),
        );
        for (const n of c.nodes) n.start([], { env: cleanEnv({ NODE_EXTRA_CA_CERTS: pki.ca }) });
        const n1 = c.node(1);
        await n1.waitForLog(/listening on .*TLS/);
        const tls = { ca: readFileSync(pki.ca) };
        await tlsClusterReady(n1.address, { tls });
        const env = cliEnv();

        const r = await runCli(['attach', n1.address, '--tls-ca', pki.ca, '--once', '--json'], {
          env,
          timeoutMs: 15_000,
        });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const j = JSON.parse(r.stdout) as {
          members: { id: number; up: boolean; role: string }[];
          leader: number;
          endpoints: string[];
        };
        // Node 1 named the others; each answered its status over wss.
        expect(j.members.map((m) => m.id)).toEqual([1, 2, 3]);
        expect(j.members.every((m) => m.up)).toBe(true);
        expect([1, 2, 3]).toContain(j.leader);
        expect(j.members.find((m) => m.id === j.leader)?.role).toBe('leader');
        expect([...j.endpoints].sort()).toEqual(c.nodes.map((n) => n.address).sort());

        // Plain ws to a TLS node: the node hangs up; the message says what to pass, and the
        // exit code is the scripting commands' for an unreachable cluster (1).
        const plain = await runCli(['attach', n1.address, '--once', '--json', '--timeout', '3s'], { env });
        expect(plain.code).toBe(1);
        expect(plain.stdout).toBe('');
        expect(plain.stderr).toMatch(/cannot reach any endpoint of .*socket hang up/);
        expect(plain.stderr).toMatch(/If the nodes serve TLS .*pass --tls-ca FILE/);
        const status = await runCli(['status', '--endpoints', n1.address, '--timeout', '3s'], { env });
        expect(status.code).toBe(plain.code);
        expect(status.stderr).toMatch(/pass --tls-ca FILE/);
      } finally {
        pki.destroy();
      }
    },
    60_000,
  );

  it('--tls-cert without --tls-key (and the reverse) is a usage error, before any connection', async () => {
    const env = cliEnv();
    const pem = path.join(tempDir(), 'any.pem');
    writeFileSync(pem, 'unused\n');
    for (const flag of ['--tls-cert', '--tls-key']) {
      // Port 1: nothing listens there, so only the flags can be what is reported.
      const r = await runCli(['attach', '127.0.0.1:1', '--once', flag, pem], { env });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--tls-cert and --tls-key go together: give both, or neither/);
      expect(r.stderr).toMatch(/raftctl attach --help/);
      expect(r.stdout).toBe('');
    }
  });
});
