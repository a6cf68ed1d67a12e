// Errors the core returns to its host. Messages match etcd's so operators and the
// conformance scripts read the same words.

export class RaftError extends Error {
  override name = 'RaftError';
}

/** The requested index is older than the storage's first index: it was compacted. */
export const ErrCompacted = new RaftError('requested index is unavailable due to compaction');
/** The snapshot is older than the one the storage already has. */
export const ErrSnapOutOfDate = new RaftError('requested index is older than the existing snapshot');
/** The requested entries are not (yet) in storage. */
export const ErrUnavailable = new RaftError('requested entry at index is unavailable');
/** The storage cannot produce a snapshot right now; the leader retries later. */
export const ErrSnapshotTemporarilyUnavailable = new RaftError('snapshot is temporarily unavailable');

/** A proposal was dropped: no leader, a transfer in progress, or too many uncommitted bytes. */
export const ErrProposalDropped = new RaftError('raft proposal dropped');
/** A message came from or went to a node this node does not know. */
export const ErrStepPeerNotFound = new RaftError('raft: cannot step as peer not found');
/** A local message was handed to step(); hosts must use the dedicated methods. */
export const ErrStepLocalMsg = new RaftError('raft: cannot step raft local message');
export const ErrStepLocalResponseMsg = new RaftError('raft: cannot step raft local response message');
