// A full garbage collection on demand, for tests and benchmarks that must see what is
// collectable collected (WeakRefs cleared, one repetition's garbage gone before the next).

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Node's `gc()`, exposed at run time: a new context gets it once the flag is set. */
export const fullGc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();
