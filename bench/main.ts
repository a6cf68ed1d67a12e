// Entry point for every benchmark suite: `npm run bench -- <suite> [args]`.
const [suite, ...rest] = process.argv.slice(2);
if (suite === 'core') {
  await (await import('./core.js')).main(rest);
} else {
  console.error(
    'usage: npm run bench -- core [--reps N] [--min-ms MS] [--warmup-ms MS] [--filter TEXT] [--no-json]',
  );
  process.exit(2);
}
