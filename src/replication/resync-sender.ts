/**
 * The resync, as the shell carries it out (replication-group.ts): the group machine's `resync`
 * action names the dirty extents and the WRITE SAME / UNMAP records (group-resync.ts); this sends
 * each volume's PR state, then the records in order, then the extents' data read under their range
 * locks, a window of chunks at a time, and tells the machine resync-done when the peer holds all
 * of it. Split from the group's shell by phase, as LIO splits its target: it runs after a link-up
 * or a start, never per host write.
 */
import { exclusive } from '../scsi/range-lock.ts';
import type { DirtyOp, WriteOp } from './group-types.ts';
import { extentsOf } from './group-resync.ts';
import { waited } from './origin-wait.ts';
import { prStateOf } from './pr-replication.ts';
import type { ReplicationGroup } from './replication-group.ts';

const RESYNC_CHUNK_BLOCKS = 2048;
/** Resync chunks in flight at once: a resync of many small regions is not one link round trip per region. */
const RESYNC_WINDOW = 16;

/**
 * auto_synchronize: send only the regions written while the group was stopped (the machine's
 * dirty extents, exact to the logical block), in chunks of up to RESYNC_CHUNK_BLOCKS, each read
 * and sent under its range lock, RESYNC_WINDOW chunks in flight (the extents are disjoint, and
 * the secondary applies them in group sequence order anyway). A link loss stops the resync (each
 * chunk checks the link first); a resync superseded by a later one (the link came back) never
 * reports resync-done, so it cannot clear a dirty map that the later one still has to send.
 */
export async function sendResync(g: ReplicationGroup, extents: { volume: number; lba: bigint; blocks: number }[], records: DirtyOp[] = []): Promise<void> {
  const gen = ++g.resyncGen;
  const t0 = performance.now();
  const bytes0 = g.stats.resyncBytes;
  const chunks = (function* () {
    for (const x of extents) {
      for (let done = 0; done < x.blocks; done += RESYNC_CHUNK_BLOCKS) yield { volume: x.volume, lba: x.lba + BigInt(done), blocks: Math.min(RESYNC_CHUNK_BLOCKS, x.blocks - done) };
    }
  })();
  // The machine's link goes down first on a heartbeat timeout (the socket closes later).
  const live = () => { if (gen !== g.resyncGen || !g.linkUp || g.machine.link !== 'up') throw new Error(gen !== g.resyncGen ? 'superseded by a later resync' : 'replication link down'); };
  // Every resync (the initial sync, after an outage, after a failover) first carries each
  // volume's PR state: PR changes made while the group was stopped are not in the dirty map,
  // and the state is a few hundred bytes (pr-replication.ts).
  const prStates = () => g.volumes.map((lu, volume) => resyncWrite(g, { kind: 'pr-state', volume, state: prStateOf(lu) }));
  const worker = async () => {
    for (let c = chunks.next(); !c.done; c = chunks.next()) {
      const { volume, lba, blocks } = c.value;
      live();
      await exclusive(g.volumes[volume], lba, blocks, async () => {
        const data = Buffer.from(await g.stores[volume].inner.read(lba, blocks));
        live(); // checked just before the step: with the link down the machine would only re-mark the region dirty
        g.stats.resyncBytes += data.length;
        await resyncWrite(g, { kind: 'write', volume, lba, blocks, fua: false, data });
        // Counted once the peer holds them: `rcopy startgroup --wait` shows this against dirtyBlocks.
        g.stats.resyncBlocks += blocks;
      });
    }
  };
  try {
    live();
    const first: (void | Promise<void>)[] = prStates();
    // The WRITE SAMEs and UNMAPs made meanwhile, as records in their order (GroupMachine.dirtyOps),
    // stepped now, before any await, so they are ordered before every host write and chunk that follows.
    for (const op of records) {
      g.stats.resyncBytes += op.kind === 'write-same' ? op.block.length : 0;
      g.stats.resyncRecords++;
      first.push(resyncWrite(g, op));
    }
    await Promise.all(first);
    for (const op of records) for (const x of extentsOf(op)) g.stats.resyncBlocks += x.blocks;
    await Promise.all(Array.from({ length: RESYNC_WINDOW }, worker));
    live();
    g.stats.lastResyncBytes = g.stats.resyncBytes - bytes0;
    g.stats.lastResyncMs = Math.round(performance.now() - t0);
    g.step({ kind: 'resync-done' });
  } catch (e) {
    g.log.warn({ group: g.cfg.name, err: e instanceof Error ? e.message : String(e) }, 'resync interrupted; it restarts with the link');
  }
}

/** A write the resync sends: the data is already here, only the peer needs it (GroupMachine.hostWrite). */
function resyncWrite(g: ReplicationGroup, op: WriteOp): void | Promise<void> {
  const origin = waited('resync', g.nextLocal++);
  return g.await(origin, { kind: 'host-write', origin, op });
}
