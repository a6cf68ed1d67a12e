// The console's connections to real (fake-backed) control servers on loopback: what it says
// when a member it learned of cannot be reached.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterConnections } from '../../src/ui/connections.js';
import { ClusterStore, type StoreInput } from '../../src/ui/store.js';
import { startHarness } from '../server/control-fixture.js';
import { waitUntil } from '../support/wait-until.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP server that hangs up on every connection, as a TLS node does on a plain ws hello. */
async function hangingUp(): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** Node 1 answers and names node 2 at `address`; the console starts from node 1 alone. */
async function consoleLearningOf(address: string): Promise<StoreInput[]> {
  const h = await startHarness();
  cleanups.push(() => h.stop());
  h.node.members = [
    { id: 1, address: `127.0.0.1:${h.port}`, learner: false },
    { id: 2, address, learner: false },
  ];
  const inputs: StoreInput[] = [];
  const conns = new ClusterConnections(new ClusterStore(), {
    endpoints: [`127.0.0.1:${h.port}`],
    record: (input) => inputs.push(input),
  });
  cleanups.push(() => conns.close());
  conns.start();
  return inputs;
}

const notes = (inputs: StoreInput[]) => inputs.flatMap((i) => (i.type === 'note' ? [i.text] : []));
const downs = (inputs: StoreInput[]) =>
  inputs.flatMap((i) => (i.type === 'link' && i.status === 'down' ? [i.reason] : []));

describe('ClusterConnections', () => {
  it('says once which flag to pass when a discovered member fails the way a TLS node does', async () => {
    const tlsNode = await hangingUp();
    const address = `127.0.0.1:${(tlsNode.address() as AddressInfo).port}`;
    const inputs = await consoleLearningOf(address);
    // The first attempt and at least two retries.
    await waitUntil(() => downs(inputs).length >= 3, 5000);
    const hinted = notes(inputs).filter((t) => t.startsWith(`cannot reach n2 at ${address}`));
    expect(hinted).toHaveLength(1);
    expect(hinted[0]).toMatch(/socket hang up \(retrying\)\. If the nodes serve TLS .*pass --tls-ca FILE/);
    expect(downs(inputs)[0]).toMatch(/socket hang up/);
  });

  it('adds no note for a member that is simply down: the table shows it', async () => {
    const closed = await hangingUp();
    const address = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const inputs = await consoleLearningOf(address);
    await waitUntil(() => downs(inputs).length >= 2, 5000);
    expect(downs(inputs)[0]).toBe('connection refused');
    expect(notes(inputs).filter((t) => t.includes('cannot reach'))).toEqual([]);
  });
});
