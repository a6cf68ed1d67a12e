// `npm run --silent datadriven -- FILE`: runs a data-driven script against our Raft core
// and prints it back with every output replaced by what we produced (rewrite mode). The
// kind of script comes from its folder's name: quorum, confchange, or interaction.
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { handleConfChange } from './confchange.js';
import { InteractionEnv } from './interaction.js';
import { type Handler, rewrite } from './parse.js';
import { handleQuorum } from './quorum.js';

function handlerFor(file: string): Handler {
  switch (basename(dirname(file))) {
    case 'quorum':
      return handleQuorum;
    case 'confchange':
      return handleConfChange();
    default: {
      const env = new InteractionEnv();
      return (d) => env.handle(d);
    }
  }
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: npm run --silent datadriven -- FILE\n');
  process.exit(2);
}
process.stdout.write(rewrite(readFileSync(file, 'utf8'), handlerFor(file)));
