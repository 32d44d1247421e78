/**
 * A short mixed soak under `support`: three sessions send every kind of writing command the
 * splitter handles (WRITE, WRITE AND VERIFY, WRITE ATOMIC, ORWRITE, WRITE SAME with and without
 * UNMAP, UNMAP, COMPARE AND WRITE, EXTENDED COPY within and across the two LUs, also of whole
 * 1 MiB chunks, which the journal and the replica share instead of copying), many in flight,
 * overlapping. Between bursts a bookmark is taken and production is photographed. At the end:
 *  - the copy equals production (verify consistent, and byte for byte);
 *  - at every bookmark, the copy's image under virtual access (read through the copy's LUs: the
 *    read map of its undo data over the unmoved replica) equals production as it was then; a
 *    write to the image shows in it and is gone after disable, the replica untouched;
 *  - at every bookmark, newest first, the copy's image under enable_image_access (rolled back with
 *    its undo data) equals production as it was then, and after disable_image_access the copy is
 *    production again.
 * ARRAYSIM_SPLITTER_SOAK_MS sets the duration (default 4 s). On a loaded machine 4 s may hold only a
 * few bursts, so production goes on past it until it has MIN_MARKS bookmarks and every kind of
 * command has completed once (bounded: MS + 20 s, after which the assertions below fail).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { disableImageAccess, enableImageAccess } from '../../src/splitter/image.ts';
import { caw16, cdb10, cdb16, unmapCdb, unmapParameterList } from '../helpers/cdb.ts';
import type { TestInitiator } from '../helpers/initiator.ts';
import { xcopyCdb, xcopyList } from '../scsi/xcopy-params.ts';
import { adminCall, pattern, startSplitterArray } from './rig.ts';
import type { SplitterRig } from './rig.ts';

const BS = 512;
const SPAN = 4096; // blocks of each LU the soak writes: 2 MiB
const MS = Number(process.env.ARRAYSIM_SPLITTER_SOAK_MS) || 4000;
/** Bookmarks the soak needs at least (one every 5 bursts). */
const MIN_MARKS = 3;
const KINDS = ['WRITE(16)', 'WRITE AND VERIFY(16)', 'WRITE ATOMIC(16)', 'ORWRITE(16)', 'WRITE SAME(16)', 'WRITE SAME(16) UNMAP', 'UNMAP', 'COMPARE AND WRITE', 'EXTENDED COPY(LID1)', 'EXTENDED COPY(LID1) of whole chunks'];

let rig: SplitterRig | undefined;
afterEach(async () => { await rig?.close(); rig = undefined; });

let seed = 1;
const rnd = (n: number) => Math.floor(Math.random() * n);
const kinds = new Map<string, number>();
const count = (k: string, status: number) => { if (status === 0) kinds.set(k, (kinds.get(k) ?? 0) + 1); };

async function one(ini: TestInitiator, r: SplitterRig): Promise<void> {
  const lun = rnd(2);
  const n = 1 + rnd(32);
  const lba = rnd(SPAN - 64);
  let k: string;
  let res;
  switch (rnd(11)) {
    case 0: k = 'WRITE(16)'; res = await ini.scsi(lun, cdb16(0x8a, lba, n), { write: pattern(n * BS, seed++) }); break;
    case 1: k = 'WRITE(10)'; res = await ini.scsi(lun, cdb10(0x2a, lba, n), { write: pattern(n * BS, seed++) }); break;
    case 2: k = 'WRITE AND VERIFY(16)'; res = await ini.scsi(lun, cdb16(0x8e, lba, n), { write: pattern(n * BS, seed++) }); break;
    case 3: {
      k = 'WRITE ATOMIC(16)';
      const c = Buffer.alloc(16); c[0] = 0x9c; c.writeBigUInt64BE(BigInt(lba), 2); c.writeUInt16BE(n, 12);
      res = await ini.scsi(lun, c, { write: pattern(n * BS, seed++) });
      break;
    }
    case 4: k = 'ORWRITE(16)'; res = await ini.scsi(lun, cdb16(0x8b, lba, n), { write: pattern(n * BS, seed++) }); break;
    case 5: {
      const unmap = rnd(2) === 1;
      k = unmap ? 'WRITE SAME(16) UNMAP' : 'WRITE SAME(16)';
      res = await ini.scsi(lun, cdb16(0x93, lba, n * 2, unmap ? 0x08 : 0), { write: pattern(BS, seed++) });
      break;
    }
    case 6: { k = 'UNMAP'; const p = unmapParameterList([[lba, n], [lba + 40, 8]]); res = await ini.scsi(lun, unmapCdb(p.length), { write: p }); break; }
    case 7: {
      k = 'COMPARE AND WRITE';
      const cur = Buffer.from(r.lus[lun].store.read(BigInt(lba), 1) as Buffer);
      res = await ini.scsi(lun, caw16(lba, 1), { write: Buffer.concat([cur, pattern(BS, seed++)]) });
      break;
    }
    case 8: {
      // Whole 1 MiB chunks: the journal and the replica share the destination's chunk copy-on-write
      // (MemoryStore.share) instead of copying it; the writes that follow must not reach them. At
      // most 64 or so (plus those in flight), so the journal (256 MiB) evicts nothing.
      if ((kinds.get('EXTENDED COPY(LID1) of whole chunks') ?? 0) >= 64) return one(ini, r);
      k = 'EXTENDED COPY(LID1) of whole chunks';
      const chunk = (1 << 20) / BS;
      const list = xcopyList({ cscds: r.lus.map((lu) => ({ naa: lu.naa })), segments: [{ src: lun, dst: rnd(2), blocks: chunk, srcLba: rnd(2) * chunk, dstLba: rnd(2) * chunk }] });
      res = await ini.scsi(lun, xcopyCdb(list.length), { write: list });
      break;
    }
    default: {
      k = 'EXTENDED COPY(LID1)';
      const dst = rnd(2);
      const list = xcopyList({ cscds: r.lus.map((lu) => ({ naa: lu.naa })), segments: [{ src: lun, dst, blocks: n, srcLba: lba, dstLba: rnd(SPAN - 64) }] });
      res = await ini.scsi(lun, xcopyCdb(list.length), { write: list });
    }
  }
  count(k, res.status);
}

describe('mixed soak under support', () => {
  it(`${MS} ms, three sessions: production == copy at the end and at every bookmark`, async () => {
    rig = await startSplitterArray('rp-vnx-flare31', ['4MiB', '4MiB']);
    const r = rig;
    const sessions = await Promise.all(['a', 'b', 'c'].map((h) => r.session(`iqn.2026-11.dev.arraysim:host-${h}`)));
    const marks: Array<{ name: string; seq: number; image: Buffer[] }> = [];
    // MS of bursts, and then on until the soak has what it checks (a machine under load, as CI's,
    // may fit only a few bursts into MS); the bound leaves the test's own timeout room for the checks.
    const until = Date.now() + MS;
    const bound = until + 20_000;
    const enough = () => marks.length >= MIN_MARKS && KINDS.every((k) => (kinds.get(k) ?? 0) > 0);
    // And no further than half the journal's size: every bookmark must stay inside the protection
    // window (evicted === 0 below), which a machine much faster than this one, or a long
    // ARRAYSIM_SPLITTER_SOAK_MS, would otherwise write past.
    const roomy = () => r.group.journal.bytes < r.group.journal.limitBytes / 2;
    for (let burst = 0; (Date.now() < until || !enough()) && Date.now() < bound && (roomy() || !enough()); burst++) {
      await Promise.all(sessions.flatMap((s) => Array.from({ length: 8 }, () => one(s, r))));
      if (burst % 5 === 4) {
        // Quiescent: nothing in flight, so production is exactly records 1..seq.
        const b = await adminCall(r.adminAddr, 'POST', '/v1/groups/default/bookmarks', { name: `b${burst}` });
        marks.push({ name: b.json.name, seq: b.json.seq, image: r.lus.map((lu) => Buffer.from(lu.store.read(0n, SPAN) as Buffer)) });
      }
    }
    const v = await adminCall(r.adminAddr, 'POST', '/v1/groups/default/verify', {});
    expect(v.json.diverged).toEqual([]);
    expect(v.json.consistent).toBe(true);
    r.lus.forEach((lu, i) => expect(Buffer.from(r.group.copy('local').replicas[i].read(0n, SPAN) as Buffer)
      .equals(Buffer.from(lu.store.read(0n, SPAN) as Buffer)), `LU ${i}`).toBe(true));
    expect(r.group.journal.evicted).toBe(0);
    expect(marks.length).toBeGreaterThanOrEqual(MIN_MARKS);
    // Each bookmark's image, as the product gives access to it: enable_image_access (logged) rolls
    // the copy back with its undo data (and reads back the payloads of the records it undoes:
    // applied history keeps none, journal.ts); then disable, and the copy is re-applied to the end.
    const c = r.group.copy('local');
    const now = r.lus.map((lu) => Buffer.from(lu.store.read(0n, SPAN) as Buffer));
    // Not vacuous: some bookmark's image differs from production at the end.
    expect(marks.some((m) => m.image.some((img, i) => !img.equals(now[i])))).toBe(true);
    // Virtual access first (the replica is not rolled): each bookmark's image, read through the
    // copy's LUs (the read map over the replica), equals production then; a write to the image
    // shows in it, and after disable the replica is still production's end, untouched.
    const seqBefore = c.appliedSeq;
    for (const m of marks) {
      const img = await enableImageAccess(r.group, c, m.name, 'virtual');
      expect(img.seq).toBe(m.seq);
      expect(img.virtual).not.toBeNull();
      const lus = c.exported.map((lu) => lu.store);
      m.image.forEach((want, i) => {
        const got = lus[i].read(0n, SPAN) as Buffer;
        expect(got.equals(want), `virtual image at ${m.name} LU ${i}`).toBe(true);
      });
      // The overlay: a host write shows in the image, not in the replica.
      const mine = pattern(8 * BS, 0xbeef);
      await lus[1].write(100n, mine);
      expect((lus[1].read(100n, 8) as Buffer).equals(mine)).toBe(true);
      await disableImageAccess(r.group, c, true);
      expect(c.appliedSeq).toBe(seqBefore);
      r.lus.forEach((_lu, i) => expect(Buffer.from(c.replicas[i].read(0n, SPAN) as Buffer).equals(now[i]), `after virtual ${m.name}: LU ${i} untouched`).toBe(true));
    }
    // The overlay went with the disable: the image of the last bookmark again, not the write.
    const last = marks[marks.length - 1];
    await enableImageAccess(r.group, c, last.name, 'virtual');
    expect((c.exported[1].store.read(0n, SPAN) as Buffer).equals(last.image[1])).toBe(true);
    await disableImageAccess(r.group, c, true);
    for (const m of [...marks].reverse()) {
      const img = await enableImageAccess(r.group, c, m.name, 'logged');
      expect(img.seq).toBe(m.seq);
      m.image.forEach((want, i) => {
        const got = Buffer.from(c.replicas[i].read(0n, SPAN) as Buffer);
        if (!got.equals(want)) {
          const bad: number[] = [];
          for (let b = 0; b < SPAN; b++) if (!got.subarray(b * BS, (b + 1) * BS).equals(want.subarray(b * BS, (b + 1) * BS))) bad.push(b);
          console.log('bookmark', m.name, m.seq, 'LU', i, 'bad blocks', bad.slice(0, 20), bad.length);
        }
        expect(got.equals(want), `bookmark ${m.name} LU ${i}`).toBe(true);
      });
      await disableImageAccess(r.group, c, true);
      while (c.appliedSeq < r.group.journal.nextSeq - 1 && r.group.transfer === 'active') await new Promise((res) => setImmediate(res));
      expect(r.group.transfer, `after ${m.name}: ${r.group.history.at(-1)?.reason}`).toBe('active');
      r.lus.forEach((lu, i) => expect(Buffer.from(c.replicas[i].read(0n, SPAN) as Buffer).equals(now[i]), `after ${m.name}: LU ${i} back at the end`).toBe(true));
    }
    for (const k of KINDS) {
      expect(kinds.get(k) ?? 0, k).toBeGreaterThan(0);
    }
    console.log(`splitter soak: ${MS} ms, ${[...kinds.values()].reduce((a, b) => a + b, 0)} commands, journal seq ${r.group.journal.nextSeq - 1}, ${marks.length} bookmarks checked`);
  }, MS + 60_000);
});
