/**
 * The vocabulary of a Remote Copy group (group-machine.ts): the events a GroupMachine takes, the
 * actions it hands back, the write records and outcomes, its options, policies and snapshot.
 * Split from group-machine.ts so that the machine's phase modules (group-link.ts, group-roles.ts,
 * group-resync.ts), the shell (engine.ts) and the stores can name these types without the
 * machine, and the machine's file holds its state and the write path alone. group-machine.ts
 * re-exports all of it: importers may keep naming that module.
 */
import type { AccessState } from '../scsi/alua.ts';
import type { GroupSyncStatus, LinkMessage, LinkNexus, PrStateWire } from '../../protocol/replication/link.ts';
import type { GroupVerdict } from '../../protocol/replication/witness.ts';

export type Role = 'primary' | 'secondary';
export type SyncStatus = GroupSyncStatus;
/** admithost -proximity: which array is local to the host (`all`: both are). */
export type Proximity = 'primary' | 'secondary' | 'all';
export const PROXIMITIES: readonly Proximity[] = ['primary', 'secondary', 'all'];

/** Group policies (setrcopygroup pol …). Active Sync turns on auto_failover and path_management and they cannot be turned off. */
export interface GroupPolicies {
  active_active: boolean;
  path_management: boolean;
  auto_failover: boolean;
  auto_recover: boolean;
  auto_synchronize: boolean;
}

/**
 * The writes a group replicates, as records (a WRITE SAME is its one block and a count, not the
 * blocks). `pr-state`: a volume's persistent reservations after a PR OUT, ordered with the writes
 * (README "Peer replication", persistent reservations); it covers no blocks.
 */
export type WriteOp =
  | { kind: 'write'; volume: number; lba: bigint; blocks: number; fua: boolean; data: Buffer }
  | { kind: 'write-same'; volume: number; lba: bigint; blocks: number; unmap: boolean; block: Buffer }
  | { kind: 'unmap'; volume: number; ranges: { lba: bigint; blocks: number }[] }
  | { kind: 'pr-state'; volume: number; state: PrStateWire };

/** A PERSISTENT RESERVE OUT at the secondary, for the primary to execute. */
export interface PrOutReq { volume: number; nexus: LinkNexus; cdb: Buffer; data: Buffer }
/** What the primary answered: SCSI status, and for CHECK CONDITION the sense reason and field pointer. */
export interface PrOutResult { status: number; reason: string; fieldPointer: { inCdb: boolean; byte: number; bit?: number } | null }

/** Who waits for a write's outcome: a command on this array, or a write the secondary forwarded here. */
export type Origin = { kind: 'local'; id: number } | { kind: 'forwarded'; id: bigint } | { kind: 'resync'; id: number };

/** A write or compare-and-write outcome for whoever waits. */
export type Outcome =
  | { kind: 'ok' }
  /** Not acknowledged: the link went away before the peer had it (the host may retry elsewhere). */
  | { kind: 'link-lost' }
  /** This array does not serve the group now (secondary not Synced, Failsafe): NOT READY 04/0C. */
  | { kind: 'unavailable' }
  | { kind: 'failed'; why: string }
  | { kind: 'miscompare'; offset: number }
  /** Not done, and the host should send it again (a forwarded write judged by a PR state that was being replaced): ABORTED COMMAND. */
  | { kind: 'retry'; why: string }
  /** A forwarded PR OUT executed at the primary (whatever its status, its state is on both arrays). */
  | { kind: 'pr-out'; result: PrOutResult };


export interface CompareAndWriteReq { volume: number; lba: bigint; blocks: number; fua: boolean; verify: Buffer; data: Buffer }

export type GroupEvent =
  /** A write on this array (the caller holds its LBA range). `now` (ms) lets a primary check its witness lease. */
  | { kind: 'host-write'; origin: Origin; op: WriteOp; now?: number }
  /** COMPARE AND WRITE arrived at this array (the secondary sends it to the primary). */
  | { kind: 'host-compare-and-write'; origin: Origin; req: CompareAndWriteReq; now?: number }
  /** PERSISTENT RESERVE OUT arrived at the secondary (it sends it to the primary, which executes it and replicates the state). */
  | { kind: 'host-pr-out'; origin: Origin; req: PrOutReq }
  /** The shell applied an op to the local store: `tag` from the apply action. */
  | { kind: 'applied'; tag: ApplyTag; ok: boolean; why?: string }
  /** A message from the peer (hello is handled by the shell before link-up). */
  | { kind: 'peer'; message: LinkMessage }
  /** `peer`: the restart flags of the peer's hello (absent: a peer that kept running, with persistent volumes). */
  | { kind: 'link-up'; peerArray: string; peer?: PeerRestart }
  | { kind: 'link-down'; reason: string }
  | { kind: 'tick'; now: number }
  | { kind: 'resync-done' }
  | { kind: 'operator'; command: OperatorCommand }
  /** The quorum witness answered a heartbeat this array sent at `sentAt`; `now` is when the answer came. */
  | { kind: 'witness'; verdict: GroupVerdict; sentAt: number; now: number }
  /** The peer's hello claims the primary role with a higher epoch: this array was failed over from. */
  | { kind: 'superseded'; by: string; epoch: number }
  /** A volume's store failed (its RAID set or metadata) or was repaired (src/store/fault.ts). */
  | { kind: 'store'; volume: number; failed: boolean; why: string };

export type OperatorCommand =
  | { verb: 'start' }
  | { verb: 'stop' }
  | { verb: 'admithost'; host: string; proximity: Proximity }
  | { verb: 'dismisshost'; host: string }
  | { verb: 'setpolicy'; policy: keyof GroupPolicies; on: boolean }
  /** setrcopygroup failover (on the secondary): become primary; with a witness only when it grants. */
  | { verb: 'failover' }
  /** setrcopygroup recover (on the array failed over to): replicate back to the old primary (a full resync). */
  | { verb: 'recover' }
  /** setrcopygroup restore (on the primary after a recover, Synced): give the primary role back to its natural array. */
  | { verb: 'restore' }
  /** setrcopygroup reverse (on the primary, Synced): swap the roles and make the new ones the natural ones. */
  | { verb: 'reverse' };

export type ApplyTag = { from: 'host'; origin: Origin; op: WriteOp } | { from: 'peer'; seq: bigint };

export type GroupAction =
  | { kind: 'send'; message: LinkMessage }
  | { kind: 'apply'; op: WriteOp; tag: ApplyTag }
  | { kind: 'complete'; origin: Origin; outcome: Outcome }
  /** The ALUA states this array's target port groups should show for the group's volumes. */
  | { kind: 'alua'; state: AccessState; hosts: Record<string, AccessState>; reason: string }
  | { kind: 'transition'; from: SyncStatus; to: SyncStatus; reason: string }
  /** `full`: after a failover the old primary may hold writes it never acknowledged: copy every volume whole. */
  /**
   * `records`: the WRITE SAMEs and UNMAPs made while the group was stopped, in the order they were
   * made, resent as records before the extents' data (see `dirtyOps`); ignored when `full`.
   */
  | { kind: 'resync'; extents: DirtyExtent[]; records: DirtyOp[]; full: boolean }
  /** This array's role in the group changed (failover, demotion, role swap). */
  | { kind: 'role'; from: Role; to: Role; epoch: number; cause: 'failover' | 'yield' | 'swap'; reason: string }
  | { kind: 'drop-link'; reason: string }
  | { kind: 'refuse'; why: string };

export interface DirtyExtent { volume: number; lba: bigint; blocks: number }
/** A WRITE SAME or UNMAP kept as a record for the resync (dirtyOps). */
export type DirtyOp = Extract<WriteOp, { kind: 'write-same' | 'unmap' }>;

export interface GroupSnapshot {
  name: string;
  role: Role;
  /** The role the configuration (or the last reverse) gives this array; HPE shows Primary-Rev / Secondary-Rev when they differ. */
  naturalRole: Role;
  /** HPE's role word: Primary, Secondary, Primary-Rev, Secondary-Rev. */
  roleName: string;
  epoch: number;
  /** This array serves host I/O for the group now. */
  serving: boolean;
  /** This array's process started and has not been resynchronised with the peer since. */
  restarted: boolean;
  witness: WitnessView | null;
  status: SyncStatus;
  started: boolean;
  link: 'up' | 'down';
  peerArray: string | null;
  policies: GroupPolicies;
  hosts: Record<string, Proximity>;
  seq: string;
  pending: number;
  dirtyExtents: number;
  dirtyBlocks: string;
  /** Why the group cannot become Synced on its own, so the operator must act (null: it is Synced, or gets there by itself). */
  operatorNeeded: string | null;
  /** A volume's store has failed (fault injection): the group is not served here until it is repaired. */
  storeFailure: string | null;
}

/** The quorum witness as this group last heard it (null: no witness configured). */
export interface WitnessView {
  reachable: boolean;
  owner: string;
  epoch: number;
  peerSight: GroupVerdict['peerSight'] | null;
  /** What the witness recorded for this array. */
  recorded: SyncStatus | null;
  /** This array may write alone (link down or group stopped) until then: the lease (ms since epoch, 0: none). */
  leaseUntil: number;
  failoverRequested: boolean;
}

export interface GroupMachineOptions {
  name: string;
  role: Role;
  policies?: Partial<GroupPolicies>;
  hosts?: Record<string, Proximity>;
  /** No heartbeat heard for this long: the link is declared down (ms). */
  linkTimeoutMs?: number;
  /** Test hook, never set in the product: acknowledge host writes before the peer has them (the negative control). */
  unsafeAckBeforePeer?: boolean;
  /** This array's name (peers.name): the witness names owners by it. */
  array?: string;
  /** A quorum witness is configured (peers.witness): writing alone needs its lease; failover needs its grant. */
  witness?: boolean;
  /** Test hook, never set in the product: a primary writes alone as if it had no witness (no record, no lease, no Failsafe) while its peer still fails over with one (the no-split-brain check's negative control). */
  unsafeWriteAloneWithoutWitness?: boolean;
  /**
   * Test hook, never set in the product: a Synced secondary that loses the link takes the primary
   * role at once, with no grant from the witness (the end-to-end split-brain negative control:
   * ARRAYSIM_FAULT_HOOK=split-brain sets this and unsafeWriteAloneWithoutWitness on both arrays).
   */
  unsafePromoteOnLinkDown?: boolean;
  /** How long a witness verdict lets the owner write alone, from when its heartbeat was sent (ms); below the witness's fail timeout. */
  leaseMs?: number;
  /**
   * The machine is made by a process start (the product sets it; tests that model one running
   * array leave it off): until it is resynchronised with the peer it has no record of what
   * differs between the two (README "Peer replication", restarts).
   */
  restarted?: boolean;
}

export const DEFAULT_LEASE_MS = 1000;

/** What a hello says about the sender's data (protocol/replication/link.ts). */
export interface PeerRestart { restarted: boolean; volatile: boolean; empty: boolean }

export function defaultPolicies(p: Partial<GroupPolicies> = {}): GroupPolicies {
  const aa = p.active_active ?? false;
  // Active Sync / Active Peer Persistence: auto_recover and auto_synchronize on by default;
  // auto_failover and path_management on and fixed (HPE Remote Copy Active Sync paper, "Setting the group for Active Sync").
  return {
    active_active: aa,
    path_management: aa || (p.path_management ?? false),
    auto_failover: aa || (p.auto_failover ?? false),
    auto_recover: p.auto_recover ?? aa,
    auto_synchronize: p.auto_synchronize ?? aa,
  };
}
