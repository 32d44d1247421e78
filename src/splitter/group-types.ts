/**
 * The consistency group's vocabulary (group.ts): its states, the options it is built from, the
 * ignored log's entries, and the changes it announces to listeners (the admin event bus). Split
 * from group.ts by phase, as LIO splits its target, so that the phase modules (group-split.ts,
 * group-init.ts, group-distribute.ts, group-status.ts) and group.ts share one set of words;
 * group.ts re-exports all of it.
 */
import type { Logger } from 'pino';
import type { LogicalUnit } from '../scsi/lu.ts';
import type { BackingStore } from '../store/store.ts';
import type { StorageAccessState } from './copy.ts';
import type { Journal } from './journal.ts';
import type { ReplicationLink } from './link.ts';
import type { Primitive, SplitterSpec } from './policy.ts';

export type GroupState = 'enabled' | 'disabled';
export type TransferState = 'init' | 'active' | 'paused' | 'error';

/** One entry of the group's "ignored" log: a command production ran that no copy received. */
export interface IgnoredEntry {
  /** The group's write sequence when it ran: it came after journal record `seq`, before seq+1. */
  seq: number;
  primitive: Primitive;
  name: string;
  opcode: number;
  serviceAction?: number;
  lun: number;
  extents: Array<{ lba: bigint; blocks: number }>;
  initiator: string;
  time: Date;
}

/** How many ignored entries the log keeps (counts go on beyond it). */
export const IGNORED_LOG_LIMIT = 10_000;

export interface GroupOptions {
  name: string;
  spec: SplitterSpec;
  /** Production LUs, in replication-set order. */
  luns: LogicalUnit[];
  copies: string[];
  journalBytes: number;
  /** The journal, when not a memory journal of journalBytes (a FileJournal, journal-file.ts). */
  journal?: Journal;
  /** Replica volumes per copy (in `copies` order), when not thin memory stores. */
  replicas?: BackingStore[][];
  /** Remote copies (CRR) by name: their replica volumes on the remote array and the link to it. */
  remote?: Record<string, { replicas: BackingStore[]; link: ReplicationLink }>;
  /** Start the transfer (first initialization, then active) at once; else paused. */
  startTransfer: boolean;
  log?: Logger;
}

/** A state change, as listeners (the admin event bus) get it. */
export interface GroupEvent { group: string; from: TransferState; to: TransferState; reason: string; time: string }

/** The image a copy gives access to, as events name it. */
export interface ImageRef { image: string; seq: number; bookmark: string | null }

/** A change of the group or of one of its copies, as listeners (the admin event bus) get it. */
export type GroupChange =
  | ({ kind: 'transfer' } & GroupEvent)
  /** A copy's storage access (image access, image.ts): `rolling` while the replica is rolled to the image, then `done`. */
  | { kind: 'copy-access'; group: string; copy: string; from: StorageAccessState; to: StorageAccessState; phase: 'rolling' | 'done'; image: ImageRef | null; reason: string }
  /** disable_copy / enable_copy. */
  | { kind: 'copy-state'; group: string; copy: string; from: 'enabled' | 'disabled'; to: 'enabled' | 'disabled'; markedRegions: number; reason: string }
  /** High load began (writes marked: the journal is full of writes not yet distributed) or ended. */
  | { kind: 'high-load'; group: string; highLoad: boolean; reason: string; time: string };
