// The environment a node process is started with.
//
// A node's large buffers — the WAL segments a restart reads (up to 64 MiB each, kept as
// the log), a snapshot being written (the whole state), large peer frames — are fresh
// memory, and the kernel hands fresh memory in one 4 KiB page at a time, a page fault
// each. On a virtual machine a page fault can cost tens of microseconds: on the 2-core VM
// of BENCHMARKS.md, reading a 1,000,000-entry WAL took 1.4 s with 4 KiB pages and 0.7 s
// with 2 MiB ones, and a loaded 3-node cluster wrote 13–14% more puts per second.
//
// glibc (2.35 and later) asks for transparent huge pages on the regions its malloc maps
// of 2 MiB or more, and on its heap, when the tunable glibc.malloc.hugetlb is 1. Tunables
// are read when a process starts, so whoever starts a node sets it: `raftctl up` does,
// README.md says how to do it for a node started another way. Elsewhere (another libc, an
// older glibc, THP disabled) the variable does nothing.

/** The tunable: malloc advises transparent huge pages for large mappings and its heap. */
export const MALLOC_HUGE_PAGES = 'glibc.malloc.hugetlb=1';

/**
 * `env` with glibc's huge-page tunable added to GLIBC_TUNABLES. Other tunables already
 * there are kept, and so is a glibc.malloc.hugetlb setting of the user's own.
 */
export function nodeProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tunables = env.GLIBC_TUNABLES ?? '';
  if (tunables.split(':').some((t) => t.startsWith('glibc.malloc.hugetlb='))) return env;
  return { ...env, GLIBC_TUNABLES: tunables === '' ? MALLOC_HUGE_PAGES : `${tunables}:${MALLOC_HUGE_PAGES}` };
}
