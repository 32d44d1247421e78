/** READ CAPACITY(10/16) (SBC-4 §5.20, §5.21) and SYNCHRONIZE CACHE(10/16) (§5.28, §5.29). */
import { describe, expect, it } from 'vitest';
import { ScsiStatus } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { cdb10, cdb16, expectGood, ILLEGAL_REQUEST, senseOf, setupLun, submit } from './sbc-fixture.ts';

const rc16 = (alloc = 32) => { const c = cdb16(0x9e, 0, alloc); c[1] = 0x10; return c; };

describe('READ CAPACITY', () => {
  it('(10) reports the last LBA and block length', async () => {
    const l = setupLun({ blocks: 2048 });
    const r = await submit(l, cdb10(0x25, 0, 0));
    expectGood(r);
    expect(r.data!.readUInt32BE(0)).toBe(2047);
    expect(r.data!.readUInt32BE(4)).toBe(512);
  });

  it('(10) reports FFFFFFFFh beyond 2 TiB of 512-byte blocks; (16) the real value', async () => {
    const l = setupLun({ store: new MemoryStore(1n << 33n) });
    expect((await submit(l, cdb10(0x25, 0, 0))).data!.readUInt32BE(0)).toBe(0xffffffff);
    const r = await submit(l, rc16());
    expect(r.data!.readBigUInt64BE(0)).toBe((1n << 33n) - 1n);
  });

  it('(10) with a non-zero LBA and PMI=0 is INVALID FIELD IN CDB', async () => {
    const l = setupLun();
    expect(senseOf(await submit(l, cdb10(0x25, 5, 0)))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
  });

  it('(16) thin LU: LBPME=1 LBPRZ=1, exponent 0, lowest aligned LBA 0, 4096-byte blocks', async () => {
    const l = setupLun({ blockSize: 4096, blocks: 100 });
    const d = (await submit(l, rc16())).data!;
    expect(d.length).toBe(32);
    expect(d.readBigUInt64BE(0)).toBe(99n);
    expect(d.readUInt32BE(8)).toBe(4096);
    expect(d[12]).toBe(0);
    expect(d[13]).toBe(0);
    expect(d[14]).toBe(0xc0);
    expect(d[15]).toBe(0);
  });

  it('(16) thick LU: LBPME=0 LBPRZ=0', async () => {
    const l = setupLun({ thick: true, blocks: 64 });
    expect((await submit(l, rc16())).data![14]).toBe(0);
  });

  it('(16) honours the allocation length', async () => {
    const l = setupLun();
    expect((await submit(l, rc16(12))).data!.length).toBe(12);
  });

  it('fails with NOT READY / MEDIUM NOT PRESENT when the medium is ejected', async () => {
    const l = setupLun({ removable: true });
    l.lu.mediumPresent = false;
    expect(senseOf(await submit(l, cdb10(0x25, 0, 0)))).toEqual([0x2, 0x3a, 0x00]);
    expect(senseOf(await submit(l, rc16()))).toEqual([0x2, 0x3a, 0x00]);
  });
});

describe('SYNCHRONIZE CACHE', () => {
  it('(10) and (16) flush the store and complete GOOD', async () => {
    let flushes = 0;
    const store = new MemoryStore(1024n);
    store.flush = () => { flushes++; };
    const l = setupLun({ store });
    expectGood(await submit(l, cdb10(0x35, 0, 0)));
    expectGood(await submit(l, cdb16(0x91, 100, 10)));
    expect(flushes).toBe(2);
  });

  it('a range beyond the end is LBA OUT OF RANGE', async () => {
    const l = setupLun({ blocks: 1024 });
    expect(senseOf(await submit(l, cdb10(0x35, 1020, 10)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x91, 2000, 0)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });

  it('WCE=0 makes every write durable (FUA) on the store', async () => {
    const store = new MemoryStore(1024n);
    const fuas: boolean[] = [];
    const orig = store.write.bind(store);
    store.write = (lba, data, fua) => { fuas.push(!!fua); orig(lba, data); };
    const l = setupLun({ store });
    await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512) });
    await submit(l, cdb10(0x2a, 0, 1, 0x08), { dataOut: Buffer.alloc(512) });
    l.lu.settings.wce = false;
    await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512) });
    expect(fuas).toEqual([false, true, true]);
    expect(ScsiStatus.Good).toBe(0);
  });
});
