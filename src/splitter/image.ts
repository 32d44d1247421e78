/**
 * Image access (RecoverPoint's words; shared/reference/replication-anchors.md §3 "Image access
 * modes"; the white paper's physical image access: "RecoverPoint ... roll back the replica image
 * to the selected point-in-time image ... tracks the reads and writes to the image so that they
 * can be backed out when image access is completed"; the field notes' dd seeding: "enable image
 * access ... after access goes to logged access, enable direct access").
 *
 *   enable_image_access group=G copy=C image=latest|BOOKMARK|TIME|seq:N [mode=logged|direct]
 *     Distribution to the copy pauses (the journal keeps filling; the other copies go on). The
 *     replica is rolled to the image: forward by applying the journal up to it, or back by
 *     restoring the undo data of the records after it, newest first (undo.ts), so the cost is
 *     the records between, never a copy of the volume. The copy's target then answers: its LUs
 *     are the replica volumes (copy-target.ts).
 *   logged access: a host's write to the image first saves what it overwrites in the image-access
 *     log; disable_image_access restores it, newest first, and the replica is the image again,
 *     from where distribution resumes and catches up with production.
 *   set_image_access_mode mode=direct: writes go straight to the replica; the image-access log and
 *     the copy's journal history (its undo data, its images) are dropped, as RecoverPoint's
 *     direct access loses the journal. After disable_image_access the replica is no image of
 *     production: the copy is synchronized by a full sweep (digests; only regions that differ
 *     are sent), as the field notes' "full volume sweep" after the dd restore.
 *   enable_image_access ... mode=virtual (RecoverPoint's virtual access): the replica is not rolled
 *     back. A read map built from the undo data of the records after the image (image-map.ts)
 *     says where each block they touched held its content at the image; reads go through it,
 *     host writes go to an overlay, and disable_image_access drops both: the replica never
 *     changed, distribution resumes where it stopped. Enabling costs O(n log n) in the undo
 *     entries after the image, no data copied (a copy behind the image is first rolled forward,
 *     as the distributor would have). The mode is chosen at enable; it does not change (disable,
 *     then enable logged or direct).
 *   disable_image_access start_transfer=yes|no (default yes): no leaves the group's transfer
 *     paused, as RecoverPoint's does without startTransfer.
 */
import type { LogicalUnit } from '../scsi/lu.ts';
import { allExclusive } from '../scsi/range-lock.ts';
import { CrrCopy } from './copy.ts';
import type { AccessedImage, LocalCopy } from './copy.ts';
import type { ConsistencyGroup } from './group.ts';
import { buildReadMaps, VirtualImage } from './image-map.ts';
import { restorePieces, UndoStream } from './undo.ts';

export type ImageAccessMode = 'logged' | 'direct' | 'virtual';

/** The operator named an image that does not exist or cannot be reached (HTTP 400 on `field`). */
export class ImageChoiceError extends Error {
  constructor(readonly field: string, message: string) { super(`${field}: ${message}`); }
}

/** The copy's state does not allow the verb (HTTP 409). */
export class ImageStateError extends Error {}

/**
 * The journal sequence an image name stands for: `latest` (the last journaled write), a bookmark,
 * `seq:N`, or a time (ISO 8601: the last write journaled at or before it).
 */
export function resolveImage(g: ConsistencyGroup, image: string): { seq: number; bookmark: string | null } {
  const last = g.journal.nextSeq - 1;
  if (image === 'latest') return { seq: last, bookmark: null };
  const b = g.bookmarks.get(image);
  if (b) return { seq: b.seq, bookmark: image };
  const m = /^seq:(\d+)$/.exec(image);
  if (m) {
    const seq = Number(m[1]);
    if (seq > last) throw new ImageChoiceError('image', `seq:${seq} is after the last journaled write (${last})`);
    return { seq, bookmark: null };
  }
  const t = /^\d{4}-\d\d-\d\d[T ]/.test(image) ? Date.parse(image) : NaN;
  if (Number.isNaN(t)) {
    throw new ImageChoiceError('image', `"${image}" is not latest, a bookmark of group ${g.name} (${[...g.bookmarks.keys()].join(', ') || 'none'}), seq:N or an ISO time`);
  }
  // The last record at or before t (records are journaled in time order).
  for (let seq = last; seq >= g.journal.firstSeq; seq--) {
    const r = g.journal.at(seq);
    if (r && r.time <= t) return { seq, bookmark: null };
  }
  if (g.journal.firstSeq > 1) throw new ImageChoiceError('image', `${image} is before the protection window (oldest record ${g.journal.firstSeq})`);
  return { seq: 0, bookmark: null };
}

/** Why image `seq` cannot be reached on `c` now, or null. */
function unreachable(g: ConsistencyGroup, c: LocalCopy, seq: number): string | null {
  if (c.imageFloor === null) return `copy ${c.name} holds no image of production yet (it needs a synchronization: start_transfer)`;
  if (seq < c.imageFloor) return `copy ${c.name} became an image of production at seq ${c.imageFloor}; seq ${seq} is older`;
  if (seq < g.journal.firstSeq - 1) return `seq ${seq} is outside the protection window (the journal starts at ${g.journal.firstSeq})`;
  return null;
}

function checkAccessible(g: ConsistencyGroup, c: LocalCopy): void {
  if (g.state === 'disabled') throw new ImageStateError(`group ${g.name} is disabled: enable_group first`);
  if (!c.enabled) throw new ImageStateError(`copy ${c.name} is disabled: enable_copy first`);
  if (c.access !== 'no-access' || c.image) throw new ImageStateError(`copy ${c.name} already has image access (${c.access}, image ${c.image?.image}); disable_image_access first`);
  if (c.syncing || g.transfer === 'init') throw new ImageStateError(`copy ${c.name} is being synchronized; enable image access once it is done`);
  if (c.needsSweep) throw new ImageStateError(`copy ${c.name} needs a full sweep before it holds an image (start_transfer)`);
}

/** Only one change of a copy's access at a time (a second waits for the first). */
const changing = new WeakMap<LocalCopy, Promise<unknown>>();
function oneAtATime<T>(c: LocalCopy, f: () => Promise<T>): Promise<T> {
  const before = changing.get(c) ?? Promise.resolve();
  const run = before.catch(() => {}).then(f);
  changing.set(c, run.catch(() => {}));
  return run;
}

/** enable_image_access: roll the copy's replica to `image` and open its target. */
export function enableImageAccess(g: ConsistencyGroup, c: LocalCopy, image: string, mode: ImageAccessMode): Promise<AccessedImage> {
  return oneAtATime(c, async () => {
    if (c instanceof CrrCopy) return enableRemote(g, c, image, mode);
    checkAccessible(g, c);
    const { seq, bookmark } = resolveImage(g, image);
    const why = unreachable(g, c, seq);
    if (why) throw new ImageChoiceError('image', why);
    // Distribution to the copy stops here (LocalCopy.distributing), and what is in flight ends.
    const to = mode === 'direct' ? 'direct-access' : mode === 'virtual' ? 'virtual-access' : 'logged-access';
    const reason = `enable_image_access image=${image}`;
    g.copyAccess(c, to, reason, { phase: 'rolling', image: { image, seq, bookmark } });
    c.changing = true;
    // The journal is held at the image from now on, not only once c.image is set: production
    // writing during the roll back trims the journal, and must leave the payloads it restores.
    c.enablingTo = seq;
    try {
      await c.serial;
      // Forward: the journal up to the image (its undo data kept like the distributor's).
      for (const r of g.journal.after(c.appliedSeq)) {
        if (r.seq > seq) break;
        await c.apply(r);
      }
      const rolledFrom = c.appliedSeq;
      let virtual: VirtualImage | null = null;
      if (mode === 'virtual') {
        // No roll back: the undo entries after the image are read in place (the journal and the
        // undo stream hold them while the image is accessed: LocalCopy.heldSeq).
        const t0 = performance.now();
        virtual = new VirtualImage(buildReadMaps(c.undo.pieces, seq, c.replicas.length), c.replicas, performance.now() - t0);
      } else {
        await rollBack(g, c, seq);
        c.appliedSeq = seq;
      }
      c.image = { image, seq, bookmark, rolledFrom, enabledAt: new Date().toISOString(), log: new UndoStream(), writes: 0, virtual };
      if (mode === 'direct') toDirect(g, c);
      await g.checkpointOutOfStep(c);
    } catch (e) {
      if (!c.image) {
        // The replica may be half rolled: it is no image of anything any more, so a sweep is due.
        c.needsSweep = true;
        c.imageFloor = null;
        c.undo.clear();
        g.copyAccess(c, 'no-access', `enable_image_access failed: ${(e as Error).message}`);
      }
      throw e;
    } finally {
      c.changing = false;
      c.enablingTo = null;
    }
    // A unit attention (SAM-5 §5.14, SPC-5 §5.12): NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (28/00).
    for (const lu of c.exported) lu.ua.establishAll(lu.target.nexusKeys(), 'MediumMayHaveChanged');
    const v = c.image.virtual;
    g.logInfo({ copy: c.name, image, seq, bookmark, rolledFrom: c.image.rolledFrom, mode, ...(v ? { mapRuns: v.runs, mapMs: Math.round(v.buildMs) } : {}) }, 'image access enabled');
    g.announceAccess(c, 'no-access', 'done', reason);
    return c.image;
  });
}

const MiB = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;

/**
 * enable_image_access on a remote copy (CRR): the remote array presents the image from its own
 * journal (src/scsi/replica-journal.ts: REPLICA CLAIM action PRESENT IMAGE), so nothing is read
 * back over the link and nothing is rolled here. Distribution to the copy stops first; a remote
 * behind the image is first sent the records up to it (while the claim still holds), then the
 * remote's window is asked (REPLICA SEQUENCE) and an image older than it is refused, naming it.
 * Logged (and virtual) access: the remote's LUs show the image through a read map of its undo
 * log and keep the host's writes in an overlay; direct: the remote rolls its volumes back to
 * the image and drops its history. The claim is released once the image is presented (the remote
 * site's hosts see the image too); the copy's own target here reads and writes it over the link.
 */
async function enableRemote(g: ConsistencyGroup, c: CrrCopy, image: string, mode: ImageAccessMode): Promise<AccessedImage> {
  checkAccessible(g, c);
  const { seq, bookmark } = resolveImage(g, image);
  if (c.imageFloor === null) throw new ImageChoiceError('image', `copy ${c.name} holds no image of production yet (it needs a synchronization: start_transfer)`);
  const to = mode === 'direct' ? 'direct-access' : mode === 'virtual' ? 'virtual-access' : 'logged-access';
  const reason = `enable_image_access image=${image}`;
  c.quiescing = true;
  c.enablingTo = seq;
  let presented = false;
  try {
    // What is in flight ends; nothing more goes but what the image needs.
    await c.serial;
    await c.shipping;
    if (c.appliedSeq < seq) await c.ship([...g.journal.after(c.appliedSeq)].filter((r) => r.seq <= seq), g.journal.nextSeq - 1);
    if (c.appliedSeq < seq) throw new ImageStateError(`copy ${c.name} could not be brought to seq ${seq} (applied ${c.appliedSeq})`);
    await c.sendBase();
    const q = await c.query();
    const floor = c.remoteFloor;
    if (floor === null) throw new ImageChoiceError('image', `copy ${c.name}: the remote array holds no image history (its window is empty)`);
    if (seq < floor) {
      throw new ImageChoiceError('image', `${image} (seq ${seq}) is older than copy ${c.name}'s protection window at the remote array: images from seq ${floor} to ${c.appliedSeq} (undo data ${MiB(q.undoBytes)} of ${MiB(q.undoLimit)})`);
    }
    await c.link.presentImage(seq, mode === 'direct');
    presented = true;
    g.copyAccess(c, to, reason, { phase: 'rolling', image: { image, seq, bookmark } });
    c.image = { image, seq, bookmark, rolledFrom: c.appliedSeq, enabledAt: new Date().toISOString(), log: new UndoStream(), writes: 0, virtual: null };
    if (mode === 'direct') toDirect(g, c);
    await g.checkpointOutOfStep(c);
  } catch (e) {
    if (!c.image) {
      if (presented) await c.link.endImage().catch(() => {});
      if (c.access !== 'no-access') g.copyAccess(c, 'no-access', `enable_image_access failed: ${(e as Error).message}`);
    }
    throw e;
  } finally {
    c.quiescing = false;
    c.enablingTo = null;
    if (!c.image) g.resume();
  }
  for (const lu of c.exported) lu.ua.establishAll(lu.target.nexusKeys(), 'MediumMayHaveChanged');
  g.logInfo({ copy: c.name, image, seq, bookmark, rolledFrom: c.image.rolledFrom, mode, remoteWindow: c.remote?.oldestImage }, 'image access enabled (presented by the remote array)');
  g.announceAccess(c, 'no-access', 'done', reason);
  return c.image;
}

/**
 * Roll the replica back to `seq`: what each record after it overwrote, newest first. The undo
 * entries stay until disable (verify --image rebuilds production's image from them).
 */
async function rollBack(g: ConsistencyGroup, c: LocalCopy, seq: number): Promise<void> {
  for (const e of c.undo.newestFirst(seq)) {
    // A record every copy had applied kept no payload (journal.ts trim): with every later
    // record undone, the replica holds exactly its image of the extent, read back so that
    // the distributor can apply it again after the image access.
    const r = g.journal.at(e.seq);
    if (r && r.kind === 'data' && r.data === null) g.journal.restoreData(r, await c.replicas[e.set].read(r.lba, r.blocks));
    await restorePieces(c.replicas[e.set], e.pieces);
  }
}

/** Direct access from here: the image-access log and the copy's history go; a full sweep is due after it. */
function toDirect(g: ConsistencyGroup, c: LocalCopy): void {
  if (c.access !== 'direct-access') g.copyAccess(c, 'direct-access', 'set_image_access_mode mode=direct');
  c.image!.log.clear();
  c.undo.clear();
  c.imageFloor = null;
  c.needsSweep = true;
}

/** set_image_access_mode: logged → direct (the field notes' seeding); direct cannot go back. */
export function setImageAccessMode(g: ConsistencyGroup, c: LocalCopy, mode: ImageAccessMode): Promise<AccessedImage> {
  return oneAtATime(c, async () => {
    if (c.access === 'no-access' || !c.image) throw new ImageStateError(`copy ${c.name} has no image access: enable_image_access first`);
    if (mode === 'virtual' || c.access === 'virtual-access') {
      throw new ImageStateError(`copy ${c.name}: virtual access is chosen at enable_image_access mode=virtual and does not change; disable_image_access, then enable_image_access with the mode wanted`);
    }
    if (mode === 'logged' && c.access === 'direct-access') {
      throw new ImageStateError(`copy ${c.name} is in direct access: its journal history is gone, logged access cannot come back; disable_image_access first`);
    }
    if (mode === 'direct' && c.access === 'logged-access') {
      // A remote copy: the remote rolls its volumes back to the image, with the overlay's writes.
      if (c instanceof CrrCopy) await c.link.presentImage(c.image.seq, true);
      toDirect(g, c);
      g.logInfo({ copy: c.name, image: c.image.image }, 'image access mode: direct (journal history of the copy dropped)');
    }
    return c.image;
  });
}

/** disable_image_access: undo the image's writes (logged) or drop map and overlay (virtual), and let distribution resume; or paused. */
export function disableImageAccess(g: ConsistencyGroup, c: LocalCopy, startTransfer: boolean): Promise<void> {
  return oneAtATime(c, async () => {
    const img = c.image;
    if (c.access === 'no-access' || !img) throw new ImageStateError(`copy ${c.name} has no image access`);
    const mode = c.access;
    c.changing = true;
    try {
      // The copy's LUs answer NOT READY from now on; commands already running end first.
      await allExclusive(c.exported, async () => {
        if (c instanceof CrrCopy) {
          // The remote drops the overlay (logged); if it cannot be reached now, the claim taken
          // again at the next login ends the presentation there.
          await c.link.endImage().catch((e: unknown) => g.logInfo({ copy: c.name, err: (e as Error).message }, 'remote copy: END IMAGE not sent; the next claim ends it'));
        } else if (mode === 'logged-access') {
          for (const e of img.log.newestFirst(-1)) await restorePieces(c.replicas[e.set], e.pieces);
        }
      });
      // The replica is the image (seq) again: re-applying the journal recaptures the undo data after it.
      // Virtual access never moved the replica (it is still at appliedSeq, with its undo data).
      if (mode !== 'virtual-access') c.undo.truncateAfter(img.seq);
      img.virtual?.close();
      c.image = null;
      g.copyAccess(c, 'no-access', `disable_image_access start_transfer=${startTransfer ? 'yes' : 'no'}`);
      // A remote copy's LUs are claimed again before anything is shipped to them.
      if (c instanceof CrrCopy) await g.claimsSettled();
      // File journal: a local replica is the image again, so a restart need not sweep it.
      else await g.checkpointOutOfStep(c);
    } finally {
      c.changing = false;
    }
    g.logInfo({ copy: c.name, mode, image: img.image, seq: img.seq, imageWrites: img.writes, startTransfer }, 'image access disabled');
    if (!startTransfer) { if (g.state === 'enabled') g.pauseTransfer('operator: disable_image_access start_transfer=no'); return; }
    if (g.transfer === 'paused' || g.transfer === 'error') { void g.startTransfer('operator: disable_image_access start_transfer=yes').catch(() => {}); return; }
    if (c.needsSweep || c.markedRegions > 0) void g.resyncCopy(c, !c.needsSweep).catch(() => {});
    else g.resume();
  });
}
