// Colour output: this file forces colour on before Ink (chalk) loads, which is the only time
// chalk reads the environment.
import { vi } from 'vitest';

vi.hoisted(() => {
  process.env.FORCE_COLOR = '1';
});

import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { prepareEnvironment } from '../../src/ui/app.js';
import { ClusterStore } from '../../src/ui/store.js';
import { theme } from '../../src/ui/theme.js';
import { NodeTable } from '../../src/ui/views/NodeTable.js';
import { hello, threeNodes } from './fixtures.js';

function snapshot() {
  const store = new ClusterStore({ publishIntervalMs: 0 });
  for (const id of [1, 2, 3])
    store.ingest({ type: 'hello', address: `127.0.0.1:${7000 + id}`, hello: hello(id) });
  for (const s of threeNodes()) store.ingest({ type: 'state', state: s });
  store.flush();
  return store.getSnapshot();
}

type TableProps = Parameters<typeof NodeTable>[0];

/** The node table's frame: node 1 selected and leading, 100 wide, unless overridden. */
function table(props: Partial<TableProps> & Pick<TableProps, 'nodes'>): string {
  return render(
    <NodeTable
      selected={1}
      leader={1}
      now={0}
      highlightMs={0}
      width={100}
      maxRows={10}
      theme={theme('dark')}
      {...props}
    />,
  ).lastFrame()!;
}

describe('colour', () => {
  it('highlights a changed cell for a moment, then not', () => {
    const snap = snapshot();
    const nodes = snap.nodes.map((n) => (n.id === 2 ? { ...n, changed: { commit: snap.now - 100 } } : n));
    const at = (now: number) => table({ nodes, now, highlightMs: 1000 });
    // Yellow background (43) only while the change is fresh.
    expect(at(snap.now)).toContain('\x1b[43m');
    expect(at(snap.now + 5000)).not.toContain('\x1b[43m');
  });

  it('colours roles: the leader green', () => {
    const snap = snapshot();
    expect(table({ nodes: snap.nodes })).toMatch(/\x1b\[92m[^\n]*leader/);
  });

  it('the mono theme (NO_COLOR) uses no colour at all', () => {
    const snap = snapshot();
    expect(table({ nodes: snap.nodes, theme: theme('mono') })).not.toMatch(/\x1b\[(3|4|9|10)\dm/);
  });

  it('maps NO_COLOR and --no-color to FORCE_COLOR=0 and the mono theme, and CI off on a terminal', () => {
    const env: NodeJS.ProcessEnv = { NO_COLOR: '1', CI: 'true' };
    expect(prepareEnvironment({ settings: { theme: 'light' } }, env, true)).toBe('mono');
    expect(env.FORCE_COLOR).toBe('0');
    expect(env.CI).toBe('false');
    const env2: NodeJS.ProcessEnv = { CI: '1' };
    expect(prepareEnvironment({ noColor: true }, env2, false)).toBe('mono');
    expect(env2.CI).toBe('1');
    const env3: NodeJS.ProcessEnv = { NO_COLOR: '' };
    expect(prepareEnvironment({ settings: { theme: 'light' } }, env3, true)).toBe('light');
    expect(env3.FORCE_COLOR).toBeUndefined();
  });
});
