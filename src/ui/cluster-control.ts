// What the console may do to the processes of a cluster it did not merely attach to. The CLI
// implements it for clusters started by `raftctl up` (src/cli/cluster.ts); `raftctl attach`
// passes none, and the console then explains that K, S, r and a need a managed cluster.
export interface ClusterControl {
  readonly name: string;
  /** Kills the node's process with SIGKILL (a crash, not a clean stop). */
  kill(id: number): Promise<void>;
  /**
   * Stops the node cleanly with SIGTERM: it refuses new requests, a leader hands leadership
   * on, requests in flight finish (SIGKILL after a grace period).
   */
  stop(id: number): Promise<void>;
  /** Starts the node again from its data dir (stopping it first if it is running). */
  restart(id: number): Promise<void>;
  /** Spawns a new node with --join, after adding it with `member-add`. */
  addNode(): Promise<{ id: number; address: string }>;
  /** Stops every node cleanly (SIGTERM, then SIGKILL after a grace period). */
  stopAll(): Promise<void>;
  /** Whether this control owns the process of node `id`. */
  isManaged(id: number): boolean;
}
