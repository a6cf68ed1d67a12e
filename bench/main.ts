// Entry point for every benchmark suite: `npm run bench -- <suite> [args]`.
import { printUsage, runSuite, UsageError } from './harness.js';

const [suite, ...rest] = process.argv.slice(2);
if (suite === '--help' || suite === '-h' || rest.includes('--help') || rest.includes('-h')) {
  printUsage();
  process.exit(0);
}
await runSuite(async () => {
  if (suite === 'core') await (await import('./core.js')).main(rest);
  else if (suite === 'cluster') await (await import('./cluster.js')).main(rest);
  else if (suite === 'failover') await (await import('./failover.js')).main(rest);
  else if (suite === 'recovery') await (await import('./recovery.js')).main(rest);
  else if (suite === 'peers') await (await import('./peers.js')).main(rest);
  else if (suite === 'console') {
    // console.ts reads its flags from process.argv, like `npm run bench:console`.
    process.argv = [process.argv[0]!, process.argv[1]!, ...rest];
    await import('./console.js');
  } else throw new UsageError(suite === undefined ? 'name a suite' : `unknown suite ${suite}`);
});
