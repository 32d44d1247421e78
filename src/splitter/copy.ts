/**
 * A copy of a consistency group (CDP, `local`: on this array) and what it keeps besides its replica
 * volumes: the regions marked while it could not be sent to (markers), the undo data of the
 * records applied to it (undo.ts, for image access), and its own state, in RecoverPoint's words
 * (shared/reference/replication-anchors.md §3, FAPI ConsistencyGroupCopyState and
 * StorageAccessState): enabled or disabled, and its storage access: `no-access` (the replica is
 * distributed to; its LUs answer NOT READY), `logged-access`, `direct-access` or `virtual-access`
 * (image access: distribution to it pauses, image.ts).
 */
import type { LogicalUnit } from '../scsi/lu.ts';
import type { BackingStore } from '../store/store.ts';
import type { VirtualImage } from './image-map.ts';
import type { JournalRecord } from './journal.ts';
import type { ReplicaSequence } from '../../protocol/scsi/replica-claim.ts';
import type { ReplicationLink } from './link.ts';
import type { RemoteStore } from './remote-store.ts';
import { UndoStream } from './undo.ts';
import type { UndoPiece } from './undo.ts';

/** Regions of the first initialization sweep (and of verify): 1 MiB. */
export const REGION_BYTES = 1 << 20;

/**
 * Regions of one volume written while the transfer was paused: one bit per REGION_BYTES region
 * (1 TiB: 1,048,576 regions, a 128 KiB bitmap).
 */
export class RegionMarkers {
  readonly regionBlocks: number;
  readonly regions: number;
  private readonly bits: Uint8Array;
  /** How many regions are marked. */
  count = 0;

  constructor(readonly blockCount: bigint, readonly blockSize: number) {
    this.regionBlocks = Math.max(1, Math.floor(REGION_BYTES / blockSize));
    this.regions = Number((blockCount + BigInt(this.regionBlocks) - 1n) / BigInt(this.regionBlocks));
    this.bits = new Uint8Array((this.regions + 7) >> 3);
  }

  /** Mark every region that blocks [lba, lba+blocks) touch. */
  mark(lba: bigint, blocks: number): void {
    if (blocks <= 0) return;
    const first = Number(lba / BigInt(this.regionBlocks));
    const last = Number((lba + BigInt(blocks) - 1n) / BigInt(this.regionBlocks));
    for (let i = first; i <= last && i < this.regions; i++) {
      const m = 1 << (i & 7);
      if ((this.bits[i >> 3] & m) === 0) { this.bits[i >> 3] |= m; this.count++; }
    }
  }

  has(i: number): boolean { return (this.bits[i >> 3] & (1 << (i & 7))) !== 0; }

  unmark(i: number): void {
    const m = 1 << (i & 7);
    if (this.bits[i >> 3] & m) { this.bits[i >> 3] &= ~m; this.count--; }
  }

  clear(): void { this.bits.fill(0); this.count = 0; }

  /** Marked region indexes, ascending (whole zero bytes skipped). */
  *marked(): Generator<number> {
    for (let b = 0; b < this.bits.length; b++) {
      if (this.bits[b] === 0) continue;
      for (let k = 0; k < 8; k++) if (this.bits[b] & (1 << k)) yield b * 8 + k;
    }
  }

  /** [lba, blocks] of region `i`. */
  region(i: number): [bigint, number] {
    const lba = BigInt(i) * BigInt(this.regionBlocks);
    const left = this.blockCount - lba;
    return [lba, Number(left < BigInt(this.regionBlocks) ? left : BigInt(this.regionBlocks))];
  }
}

/** RecoverPoint's storage access states of a copy (FAPI StorageAccessState: NO_ACCESS, LOGGED_ACCESS, DIRECT_ACCESS). */
export type StorageAccessState = 'no-access' | 'logged-access' | 'direct-access' | 'virtual-access';

/**
 * Which access changes are legal (logged → direct, as the field notes do; direct never back to
 * logged; virtual access presents the image without rolling the replica, so it has no way to
 * logged or direct but through no-access).
 */
const ACCESS_EDGES: Record<StorageAccessState, readonly StorageAccessState[]> = {
  'no-access': ['logged-access', 'direct-access', 'virtual-access'],
  'logged-access': ['direct-access', 'no-access'],
  'direct-access': ['no-access'],
  'virtual-access': ['no-access'],
};

/** The image a copy gives access to (image.ts). */
export interface AccessedImage {
  /** What the operator asked for: `latest`, a bookmark's name or a time. */
  image: string;
  /** The journal sequence the image is at (everything up to it, nothing after). */
  seq: number;
  bookmark: string | null;
  /** The sequence the replica was at before it was rolled to the image (virtual access: where it stays). */
  rolledFrom: number;
  enabledAt: string;
  /** Logged access: what the host's writes to the image overwrote (restored on disable). */
  log: UndoStream;
  /** Host writes to the image (every mode). */
  writes: number;
  /** Virtual access: the read map over the replica and the host's overlay (image-map.ts); null otherwise. */
  virtual: VirtualImage | null;
}

/** Synchronization of one copy (first initialization, after direct access, enable_copy). */
export interface InitProgress {
  /** What the last synchronization sent: a full sweep (digest compare), the marked regions, or nothing yet. */
  kind: 'none' | 'full-sweep' | 'markers';
  /** Regions sent to the copies. */
  regions: number;
  /** Regions whose digests were compared (full sweep). */
  regionsCompared: number;
  bytesSent: number;
  volumeBytes: number;
  done: boolean;
}

/** A copy of the group (CDP: `local`, on this array): one replica volume per replication set. */
export class LocalCopy {
  readonly kind: 'local' | 'remote' = 'local';
  /** Highest journal sequence applied to the replicas. */
  appliedSeq = 0;
  appliedRecords = 0;
  /** Per replication set: regions written while the transfer was paused or the copy disabled. */
  readonly markers: RegionMarkers[];
  /** The replicas have never been synchronized with production (or the group was disabled): a full sweep is due. */
  needsSweep = true;
  /** File journal: the sequence the copy's checkpoint names (replicas durable up to it). */
  checkpointSeq = 0;
  checkpointInitialized = false;
  /** File journal: applications to this copy, one after the other (distributor, verify's drain). */
  serial: Promise<void> = Promise.resolve();
  /** disable_copy: nothing is distributed to it; production writes mark its regions. */
  enabled = true;
  access: StorageAccessState = 'no-access';
  image: AccessedImage | null = null;
  /** Image access is being enabled or disabled (rolling, undoing the image's writes): its LUs are not ready. */
  changing = false;
  /**
   * enable_image_access is taking the replica to this sequence (before `image` is set): the journal
   * keeps the payloads after it, which the roll back restores (journal.restoreData) and the
   * distributor re-applies after disable; a trim meanwhile (production writing) must not drop them again.
   */
  enablingTo: number | null = null;
  /** The LUs of the copy's own target (copy-target.ts), one per replication set. */
  exported: LogicalUnit[] = [];
  /** A synchronization of this copy alone runs (enable_copy, after direct access): not distributed to meanwhile. */
  syncing = false;
  /** The last synchronization of this copy alone. */
  sync: InitProgress | null = null;
  /** What each applied record overwrote, for rolling back to an earlier image (file journal: also on disk, undo-file.ts). */
  undo: UndoStream = new UndoStream();
  /**
   * The oldest image the replicas can be rolled back to: the sequence at which they last became a
   * write-order consistent image of production (end of a synchronization, clear_markers,
   * recovery); null while they are not one (never synchronized, after direct access).
   */
  imageFloor: number | null = null;

  /** Every replica is a memory store: apply() finishes before it returns (no promise). */
  readonly synchronous: boolean;

  constructor(readonly name: string, readonly replicas: BackingStore[]) {
    this.markers = replicas.map((r) => new RegionMarkers(r.blockCount, r.blockSize));
    this.synchronous = replicas.every((r) => r.kind === 'memory');
  }

  /** The one place a copy's storage access changes: checked against ACCESS_EDGES; returns the change for the log. */
  transition(to: StorageAccessState, reason: string): { copy: string; from: StorageAccessState; to: StorageAccessState; reason: string } {
    const from = this.access;
    if (!ACCESS_EDGES[from].includes(to)) throw new Error(`copy ${this.name}: storage access cannot go from ${from} to ${to}`);
    this.access = to;
    return { copy: this.name, from, to, reason };
  }

  /** Regions marked over all sets. */
  get markedRegions(): number { return this.markers.reduce((n, m) => n + m.count, 0); }

  /** Whether the distributor applies the journal to it now. */
  get distributing(): boolean { return this.enabled && this.access === 'no-access' && !this.syncing; }

  /**
   * The journal sequence the copy holds history from: the records after it, and its undo data
   * after it, stay (virtual access reads the undo data after its image; logged access has rolled
   * the replica back to it).
   */
  get heldSeq(): number {
    const to = this.image ? this.image.seq : this.enablingTo;
    return to === null ? this.appliedSeq : Math.min(this.appliedSeq, to);
  }

  /** Whether its replicas are the journal's image at appliedSeq (what a checkpoint may call initialized). */
  get inStep(): boolean { return this.distributing && !this.needsSweep && this.markedRegions === 0; }

  /** The replicas became production's image at `seq`: images from there on can be reached; older undo data is void. */
  consistentAt(seq: number): void {
    this.undo.clear();
    this.imageFloor = seq;
  }

  /**
   * Apply one record to the replica of its set (memory replicas: synchronous; file: settles when
   * written), saving what it overwrites first when images after imageFloor are kept.
   */
  apply(r: JournalRecord): void | Promise<void> {
    if (this.imageFloor !== null && r.seq > this.imageFloor) {
      const before = this.undo.capture(this.replicas[r.set], r.lba, r.blocks);
      if (before instanceof Promise) return before.then((p) => this.applySaved(r, p));
      return this.applySaved(r, before);
    }
    return this.write(r);
  }

  private applySaved(r: JournalRecord, before: UndoPiece[]): void | Promise<void> {
    this.undo.push(r.seq, r.set, before);
    // Write-ahead: a before-image kept on disk is durable before the replica changes.
    const ahead = this.undo.ahead();
    if (ahead) return ahead.then(() => this.write(r));
    return this.write(r);
  }

  /** Apply `r` to its replica, saving nothing (the distributor's write-ahead runs save first, undo-file.ts). */
  write(r: JournalRecord): void | Promise<void> {
    const s = this.replicas[r.set];
    let p: void | Promise<void>;
    if (r.kind === 'data') p = s.write(r.lba, r.data!);
    else if (r.kind === 'unmap') {
      p = s.unmap ? s.unmap(r.lba, r.blocks) : s.writeSame!(r.lba, r.blocks, Buffer.alloc(s.blockSize), false);
    } else if (r.unmap && s.unmap) p = s.unmap(r.lba, r.blocks);
    // A deallocated range reads zeros (LBPRZ=1) whatever the WRITE SAME block held.
    else p = s.writeSame!(r.lba, r.blocks, r.unmap ? Buffer.alloc(s.blockSize) : r.data!, false);
    if (p instanceof Promise) return p.then(() => { this.appliedSeq = r.seq; this.appliedRecords++; });
    this.appliedSeq = r.seq;
    this.appliedRecords++;
  }
}

/** Records a remote copy keeps in flight on its link at most, and their payload bytes at most. */
export const SHIP_WINDOW = 16;
export const SHIP_WINDOW_BYTES = 8 << 20;

/**
 * A remote copy (CRR): its replica volumes are LUs of another arraysim (remote-store.ts), reached
 * over the copy's link (link.ts), claimed there (REPLICA CLAIM) so that no other host writes them.
 * The group's records cross the link as REPLICA RECORDs carrying their group sequence and the
 * sequence shipped before them; up to SHIP_WINDOW go at once (or SHIP_WINDOW_BYTES of payload),
 * and the remote array applies them strictly in sequence order (its receive queue,
 * src/scsi/replica-claim.ts), answering each once applied. So the remote replicas are at every
 * moment production's image at some sequence, whenever the link drops, and the copy's appliedSeq
 * moves over the acknowledged prefix. After a login the copy asks the remote where it is (REPLICA
 * SEQUENCE) and goes on from there; after a synchronization (sweep, markers, clear_markers) it
 * tells the remote its new base.
 *
 * Its undo data is kept where RecoverPoint keeps it, in the remote site's journal: the remote
 * array saves what each record overwrites (src/scsi/replica-journal.ts), up to the copy's undo
 * limit, and reports its protection window (REPLICA SEQUENCE: OLDEST IMAGE). So this array keeps
 * none for it (`undo` stays empty); image access asks the remote to present the image (PRESENT
 * IMAGE), and the oldest image reachable is the later of imageFloor (the copy became an image of
 * production there) and the remote's window.
 */
export class CrrCopy extends LocalCopy {
  override readonly kind = 'remote' as const;
  /** The distributor's shipment to it, while one runs (group-distribute.ts ship). */
  shipping: Promise<void> | null = null;
  /** The replicas became an image by another way than records (a synchronization): the remote must be told the new base. */
  private baseDirty = false;
  /** The link login after which the remote's position is known (-1: ask it). */
  private knownLogin = -1;
  /** Records shipped, and the most that were in flight at once. */
  readonly shipped = { records: 0, maxInFlight: 0, resumedFrom: null as number | null };
  /** enable_image_access is bringing the remote to its image: nothing is shipped meanwhile but what it sends. */
  quiescing = false;
  /** The remote site's journal as it last reported it (REPLICA SEQUENCE), and when. */
  remote: (Omit<ReplicaSequence, 'claimed' | 'queued'> & { asOf: string }) | null = null;

  constructor(name: string, replicas: BackingStore[], readonly link: ReplicationLink) {
    super(name, replicas);
  }

  override consistentAt(seq: number): void {
    super.consistentAt(seq);
    this.baseDirty = true;
  }

  override apply(r: JournalRecord): Promise<void> {
    return this.ship([r], r.seq);
  }

  override get distributing(): boolean { return super.distributing && !this.quiescing; }

  /** The remote holds the history (its undo log): this array's journal need keep only what the remote lacks. */
  override get heldSeq(): number { return this.appliedSeq; }

  /** REPLICA SEQUENCE: where the remote's receive queue and journal are (status shows the window). */
  async query(): Promise<ReplicaSequence> {
    const q = await this.link.querySequence();
    this.remote = { applied: q.applied, valid: q.valid, oldestImage: q.oldestImage, image: q.image, direct: q.direct, undoBytes: q.undoBytes, undoLimit: q.undoLimit, asOf: new Date().toISOString() };
    return q;
  }

  /** The oldest image reachable: the later of where the copy became an image here and the remote's window (null: none). */
  get remoteFloor(): number | null {
    const w = this.remote?.oldestImage ?? null;
    if (this.imageFloor === null || w === null) return null;
    return Math.max(this.imageFloor, w);
  }

  /** A synchronization left the base unsent: send it now (before an image is asked of the remote). */
  async sendBase(): Promise<void> {
    if (!this.baseDirty) return;
    await this.link.setBase(this.appliedSeq);
    this.baseDirty = false;
    this.knownLogin = this.link.counters.logins;
  }

  /**
   * Where the remote receive queue is, before records go: after a synchronization its base is set
   * to appliedSeq; after a login (the link dropped, production restarted) it is asked, and the
   * records it applied that this array never saw acknowledged count as applied (a record it
   * queued but had not applied was dropped with the session, and goes again).
   */
  private async position(lastSeq: number): Promise<void> {
    if (this.baseDirty) { await this.sendBase(); return; }
    if (this.knownLogin === this.link.counters.logins && this.link.connected) return;
    const q = await this.query();
    if (q.valid && q.applied > this.appliedSeq && q.applied <= lastSeq) {
      this.shipped.resumedFrom = q.applied;
      this.appliedRecords += q.applied - this.appliedSeq;
      this.appliedSeq = q.applied;
    } else if (!q.valid || q.applied !== this.appliedSeq) {
      await this.link.setBase(this.appliedSeq);
    }
    this.knownLogin = this.link.counters.logins;
  }

  /**
   * Ship `batch` (records in sequence order; `lastSeq` the journal's newest) with up to
   * SHIP_WINDOW in flight on one session, until `stop` says so. On the first failure nothing more
   * goes, the session is dropped (the remote drops what it holds waiting), and the failure is
   * thrown once what was in flight has settled; appliedSeq is the acknowledged prefix.
   */
  async ship(batch: readonly JournalRecord[], lastSeq: number, stop?: () => boolean): Promise<void> {
    if (!batch.length) return;
    await this.position(lastSeq);
    const session = await this.link.current();
    const inFlight: Array<{ r: JournalRecord; done: boolean }> = [];
    const sends: Promise<void>[] = [];
    let bytes = 0;
    let failure: unknown = null;
    let wake: (() => void) | null = null;
    let prev = this.appliedSeq;
    const advance = () => {
      while (inFlight.length && inFlight[0].done) {
        const { r } = inFlight.shift()!;
        this.appliedSeq = r.seq;
        this.appliedRecords++;
      }
    };
    for (const r of batch) {
      if (r.seq <= prev) continue; // the remote had it (position)
      while (!failure && (inFlight.length >= SHIP_WINDOW || bytes >= SHIP_WINDOW_BYTES)) await new Promise<void>((res) => { wake = res; });
      if (failure || stop?.()) break;
      const e = { r, done: false };
      inFlight.push(e);
      this.shipped.maxInFlight = Math.max(this.shipped.maxInFlight, inFlight.length);
      const n = r.data?.length ?? 0;
      bytes += n;
      sends.push((this.replicas[r.set] as RemoteStore).record(r, prev, session).then(
        () => { e.done = true; this.shipped.records++; advance(); },
        (err: unknown) => {
          if (failure) return;
          failure = err;
          // What the remote holds waiting behind a record that failed can never be applied: dropping
          // the session makes it drop them (and ends their commands here).
          this.link.drop();
        },
      ).finally(() => { bytes -= n; const w = wake; wake = null; w?.(); }));
      prev = r.seq;
    }
    await Promise.all(sends);
    if (failure) throw failure;
  }
}
