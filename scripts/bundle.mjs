// Bundles the compiled CLI (dist/cli/main.js, from tsc) into dist/bundle/, which bin/raftctl
// runs. Node 20 resolves and compiles an ES module graph file by file: yargs, zod, ws and our
// own modules are ~300 files, ~200 ms of every command's start (a node's restart included)
// before it does anything. One bundle, split where the CLI imports on demand (the console,
// the commands a node does not need), loads in about half the time. tsc stays the compiler
// of record (types, checks, dist/ for code that imports the library); this only packs.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const outdir = new URL('../dist/bundle/', import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [new URL('../dist/cli/main.js', import.meta.url).pathname],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // Optional at run time and loaded only if present: ws' native helpers, Ink's devtools.
  external: ['bufferutil', 'utf-8-validate', 'react-devtools-core'],
  // CommonJS dependencies (ws) call require() for Node's built-ins; an ES module has none.
  banner: {
    js: "import { createRequire as __raftctlCreateRequire } from 'node:module'; const require = __raftctlCreateRequire(import.meta.url);",
  },
});
