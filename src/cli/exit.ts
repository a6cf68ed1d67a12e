// Exit codes, documented in `raftctl --help` and the README.
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** The cluster has no leader or no quorum to answer. */
  noQuorum: 3,
  interrupted: 130,
} as const;
