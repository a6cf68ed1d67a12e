// Regression tests: every script in testdata/ is run through the interaction env and
// must reproduce its recorded output exactly. After an intended change of behaviour,
// regenerate the recordings with `RAFT_REWRITE=1 npx vitest run test/raft/interaction.test.ts`
// and review the diff.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InteractionEnv } from './datadriven/interaction.js';
import { rewrite } from './datadriven/parse.js';

const dir = join(import.meta.dirname, 'testdata');
const scripts = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('interaction scripts', () => {
  it.each(scripts)('%s', (name) => {
    const file = join(dir, name);
    const recorded = readFileSync(file, 'utf8');
    const env = new InteractionEnv();
    const actual = rewrite(recorded, (d) => env.handle(d));
    if (process.env.RAFT_REWRITE) writeFileSync(file, actual);
    else expect(actual).toBe(recorded);
  });
});
