// Entry point for every benchmark suite: `npm run bench -- <suite> [args]`.
const [suite, ...rest] = process.argv.slice(2);
if (suite === 'core') {
  await (await import('./core.js')).main(rest);
} else if (suite === 'cluster') {
  await (await import('./cluster.js')).main(rest);
} else if (suite === 'failover') {
  await (await import('./failover.js')).main(rest);
} else if (suite === 'recovery') {
  await (await import('./recovery.js')).main(rest);
} else if (suite === 'peers') {
  await (await import('./peers.js')).main(rest);
} else if (suite === 'console') {
  // console.ts reads its flags from process.argv, like `npm run bench:console`.
  process.argv = [process.argv[0]!, process.argv[1]!, ...rest];
  await import('./console.js');
} else {
  console.error(
    'usage: npm run bench -- core [--reps N] [--min-ms MS] [--warmup-ms MS] [--filter TEXT] [--no-json]\n' +
      '       npm run bench -- cluster [--secs S] [--nodes 3,5] [--clients 1,16,256,1024] [--ops put,get,sget]\n' +
      '                                [--tick-ms MS] [--dir DIR] [--node-args "FLAGS"] [--conns route|spread|leader]\n' +
      '                                [--profile | --profile-only] [--no-json]\n' +
      '       npm run bench -- failover [--runs 5] [--clients 16] [--warmup-ms MS] [--tick-ms 100] [--election-ticks 10]\n' +
      '       npm run bench -- recovery [--entries 1000000] [--value-bytes 256] [--runs 3] [--catchup-puts 10000]\n' +
      '                                 [--dir DIR] [--profile] [--only log|snapshot] [--no-json]\n' +
      '       npm run bench -- peers [--only gateway|core] [--secs 5] [--warmup-secs 1] [--clients 1,16,64,256] [--no-etcd] [--no-json]\n' +
      '       npm run bench -- console [--seconds S] [--rates 1000,20000] [--filter TEXT] [--max-fps N] [--incremental]\n' +
      '                                [--store-only] [--json] [--no-save]',
  );
  process.exit(2);
}
