import type { Entry, HardState, Message, ReadState, Snapshot, SoftState } from './types.js';

/**
 * Everything a RawNode hands its host in one round: state to persist, entries to append
 * and apply, and messages to send. Parts that did not change since the last Ready are
 * absent (softState, hardState, snapshot) or empty (the lists).
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  /** Whether hardState and entries must be synced to durable storage before sending messages. */
  mustSync: boolean;
}
