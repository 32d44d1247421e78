/**
 * What status() reports of a consistency group (group.ts): states, the journal and its protection
 * window, each copy's lag, image, history and link, markers, high load, the last initialization,
 * bookmarks and the ignored counts. Split from group.ts by phase, as LIO splits its target: read
 * by the admin API, the CLI and verify, never on the write path.
 */
import { CrrCopy } from './copy.ts';
import type { AccessedImage, InitProgress, StorageAccessState } from './copy.ts';
import type { ConsistencyGroup } from './group.ts';
import type { GroupEvent, GroupState, TransferState } from './group-types.ts';
import type { ProtectionWindow } from './journal.ts';
import type { LinkStatus } from './link.ts';
import type { Primitive } from './policy.ts';
import { formatSpec } from './policy.ts';

/** ConsistencyGroup.status(). */
export function groupStatus(g: ConsistencyGroup): GroupStatus {
  const last = g.journal.nextSeq - 1;
  return {
    name: g.name,
    state: g.state,
    transfer: g.transfer,
    splitter: { spec: formatSpec(g.spec), kind: g.spec.kind },
    replicationSets: g.sets.map((s) => ({ lun: s.lu.lun, target: s.lu.target.name, blocks: String(s.lu.blockCount), blockSize: s.lu.blockSize })),
    journal: {
      kind: g.journal.kind, bytes: g.journal.bytes, limitBytes: g.journal.limitBytes, records: g.journal.length,
      lastSeq: last, evictedRecords: g.journal.evicted, protectionWindow: g.journal.window(),
    },
    copies: g.copies.map((c) => ({
      name: c.name, kind: c.kind, enabled: c.enabled, access: c.access, appliedSeq: c.appliedSeq,
      lag: { records: last - c.appliedSeq, bytes: g.journal.bytesAfter(c.appliedSeq) },
      image: c.image && {
        image: c.image.image, seq: c.image.seq, bookmark: c.image.bookmark, rolledFrom: c.image.rolledFrom,
        enabledAt: c.image.enabledAt, writes: c.image.writes, logBytes: c.image.log.bytes,
        virtual: c.image.virtual && {
          mapRuns: c.image.virtual.runs, mapBlocks: c.image.virtual.mapBlocks, mapMs: Math.round(c.image.virtual.buildMs * 10) / 10, overlayBlocks: c.image.virtual.overlayBlocks,
        },
      },
      // The oldest image enable_image_access can reach (null: none until the copy is synchronized);
      // a remote copy's history is the remote array's journal (its window as last reported).
      oldestImageSeq: c instanceof CrrCopy ? c.remoteFloor : c.imageFloor === null ? null : Math.max(c.imageFloor, g.journal.firstSeq - 1),
      undoBytes: c instanceof CrrCopy ? c.remote?.undoBytes ?? 0 : c.undo.bytes,
      synchronization: c.sync && { ...c.sync },
      ...(c instanceof CrrCopy ? { link: c.link.status(), remoteJournal: c.remote && { ...c.remote } } : {}),
    })),
    markers: g.copies.map((c) => ({
      copy: c.name, regions: c.markedRegions, bytes: c.markers.reduce((n, m, i) => n + m.count * m.regionBlocks * g.sets[i].lu.blockSize, 0),
      fullSweep: c.needsSweep,
    })),
    highLoad: g.highLoad,
    initialization: { ...g.init, percent: g.init.volumeBytes ? Math.round((10000 * g.init.bytesSent) / g.init.volumeBytes) / 100 : 0 },
    bookmarks: [...g.bookmarks].map(([name, b]) => ({ name, ...b })),
    ignored: { ...g.ignoredCounts },
    history: g.history.slice(-10),
  };
}

export interface GroupStatus {
  name: string;
  state: GroupState;
  transfer: TransferState;
  splitter: { spec: string; kind: string };
  replicationSets: Array<{ lun: number; target: string; blocks: string; blockSize: number }>;
  journal: { kind: 'memory' | 'file'; bytes: number; limitBytes: number; records: number; lastSeq: number; evictedRecords: number; protectionWindow: ProtectionWindow };
  copies: Array<{
    name: string; kind: string; enabled: boolean; access: StorageAccessState; appliedSeq: number; lag: { records: number; bytes: number };
    image: (Omit<AccessedImage, 'log' | 'virtual'> & { logBytes: number; virtual: { mapRuns: number; mapBlocks: number; mapMs: number; overlayBlocks: number } | null }) | null;
    oldestImageSeq: number | null; undoBytes: number;
    synchronization: InitProgress | null;
    /** A remote copy's link: where, its rate limit, bytes that crossed it. */
    link?: LinkStatus;
    /** A remote copy: the remote site's journal as it last reported it (REPLICA SEQUENCE), null before it was asked. */
    remoteJournal?: { applied: number; valid: boolean; oldestImage: number | null; image: number | null; direct: boolean; undoBytes: number; undoLimit: number; asOf: string } | null;
  }>;
  /** Per copy: regions marked while paused (bytes: their size), and whether a full sweep is due. */
  markers: Array<{ copy: string; regions: number; bytes: number; fullSweep: boolean }>;
  /** Writes are marked, not journaled: the journal is full of writes not yet distributed (ConsistencyGroup.highLoad). */
  highLoad: boolean;
  initialization: InitProgress & { percent: number };
  bookmarks: Array<{ name: string; seq: number; time: string }>;
  ignored: Record<Primitive, number>;
  history: GroupEvent[];
}
