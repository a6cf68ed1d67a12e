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
// older glibc, THP disabled) the variable does nothing. A node started without it says so
// in its log when it would make a difference.

import { readFileSync } from 'node:fs';

/** The tunable: malloc advises transparent huge pages for large mappings and its heap. */
export const MALLOC_HUGE_PAGES = 'glibc.malloc.hugetlb=1';

function hasHugePagesSetting(env: NodeJS.ProcessEnv): boolean {
  return (env.GLIBC_TUNABLES ?? '').split(':').some((t) => t.startsWith('glibc.malloc.hugetlb='));
}

/**
 * `env` with glibc's huge-page tunable added to GLIBC_TUNABLES. Other tunables already
 * there are kept, and so is a glibc.malloc.hugetlb setting of the user's own.
 */
export function nodeProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (hasHugePagesSetting(env)) return env;
  const tunables = env.GLIBC_TUNABLES ?? '';
  return { ...env, GLIBC_TUNABLES: tunables === '' ? MALLOC_HUGE_PAGES : `${tunables}:${MALLOC_HUGE_PAGES}` };
}

/**
 * The kernel's transparent huge page mode (`always`, `madvise`, `never`), or undefined where
 * there is none to read (not Linux, no THP).
 */
export function transparentHugePageMode(): string | undefined {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * What a node started with `env` should tell its operator about huge pages: a line when the
 * kernel gives them only to memory that asks (`madvise`) and nothing in `env` asks, else
 * undefined (with `always` every large region gets them anyway; with `never` none can).
 */
export function hugePagesAdvice(env: NodeJS.ProcessEnv, thpMode: string | undefined): string | undefined {
  if (thpMode !== 'madvise' || hasHugePagesSetting(env)) return undefined;
  return (
    `started without GLIBC_TUNABLES=${MALLOC_HUGE_PAGES}: large buffers (the WAL read at a restart, ` +
    'snapshots) take a page fault per 4 KiB; `raftctl up` sets it, README.md says how to for a node started otherwise'
  );
}
