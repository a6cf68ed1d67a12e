// The public surface of the Raft core. Hosts import from here; the modules behind it
// (the Raft state machine, the log, the conf change machinery) stay internal.

export * from './confchange-codec.js';
export * from './describe.js';
export * from './errors.js';
export type { Inflights } from './inflights.js';
export * from './logger.js';
export { ErrStopped, Node, type ReadyListener } from './node.js';
export { type Progress, type ProgressMap, type ProgressState, progressMapToString } from './progress.js';
export type { AckedIndexer, JointConfig, MajorityConfig, VoteResult } from './quorum.js';
export type { Config } from './raft.js';
export {
  type BasicStatus,
  mustSync,
  type Peer,
  RawNode,
  type SnapshotStatus,
  type Status,
} from './rawnode.js';
export type { ReadOnlyOption } from './read-only.js';
export type { Ready } from './ready.js';
export { limitSize, MemoryStorage, type Storage } from './storage.js';
export { configToString, type ProgressTracker, type TrackerConfig, type VoteTally } from './tracker.js';
export * from './types.js';
