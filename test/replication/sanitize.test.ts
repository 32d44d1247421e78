/**
 * SANITIZE on a replicated volume, two arrays over TCP on loopback (README "Peer replication",
 * SANITIZE): replicated as compact records, so both arrays end the same whichever array ran it;
 * refused with 05/2C/00 while the group does not replicate. The comparison of the two arrays'
 * stores has its own negative control.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { configureSanitize } from '../../src/scsi/sbc-medium.ts';
import type { ScsiDevice } from '../../src/initiator/index.ts';
import { block, senseOf, settled, startPair, until } from './pair.ts';
import type { Pair } from './pair.ts';

const NORMAL = configureSanitize({});
let pair: Pair | null = null;
afterEach(async () => { configureSanitize(NORMAL); await pair?.close(); pair = null; });

/** SANITIZE (SBC-4 §5.26), IMMED=0: OVERWRITE with a one-pass `fill` pattern, or the erase service action `sa`. */
function sanitize(d: ScsiDevice, o: { fill: number } | { sa: number }) {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x48;
  if ('fill' in o) {
    const list = Buffer.alloc(4 + 4);
    list[0] = 1; // one pass
    list.writeUInt16BE(4, 2);
    list.fill(o.fill, 4);
    cdb[1] = 0x01;
    cdb.writeUInt16BE(list.length, 7);
    return settled(() => d.raw({ cdb, dataOut: list }));
  }
  cdb[1] = o.sa;
  return settled(() => d.raw({ cdb }));
}

/** The LBA ranges (of those given) where the two arrays' stores differ, read from each store directly. */
async function differences(p: Pair, lbas: bigint[]): Promise<string[]> {
  const out: string[] = [];
  for (const lba of lbas) {
    const a = Buffer.from(await p.ga.stores[0].inner.read(lba, 8));
    const b = Buffer.from(await p.gb.stores[0].inner.read(lba, 8));
    if (!a.equals(b)) out.push(`LBA ${lba}+8`);
  }
  return out;
}

const SAMPLE = [0n, 100n, 4096n, 65536n, 131064n];

describe('SANITIZE on a replicated volume', () => {
  it('OVERWRITE through the secondary: both arrays hold the pattern, and the link carried no block data', async () => {
    configureSanitize({ overwritePassMs: 20 });
    pair = await startPair();
    const da = await pair.open('A');
    const db = await pair.open('B');
    for (const lba of SAMPLE) expect(senseOf(await settled(() => da.write(lba, block(`before ${lba}`, 8))))).toBe('good');
    const bytes0 = pair.ga.stats.replicatedBytes;
    expect(senseOf(await sanitize(db, { fill: 0xc3 }))).toBe('good');
    expect(await differences(pair, SAMPLE)).toEqual([]);
    const r = await settled(() => da.read(65536n, 8));
    expect(r.kind === 'good' && r.value.equals(Buffer.alloc(8 * 512, 0xc3))).toBe(true);
    // WRITE SAME records of one block each, no WRITE data: 64 MiB sanitized for nothing on the link but records.
    expect(pair.ga.stats.replicatedBytes - bytes0).toBe(0);
  });

  it('CRYPTOGRAPHIC ERASE through the primary: both arrays read zeros', async () => {
    configureSanitize({ cryptoEraseMs: 20 });
    pair = await startPair();
    const da = await pair.open('A');
    const db = await pair.open('B');
    for (const lba of SAMPLE) expect(senseOf(await settled(() => db.write(lba, block(`before ${lba}`, 8))))).toBe('good');
    expect(senseOf(await sanitize(da, { sa: 0x03 }))).toBe('good');
    expect(await differences(pair, SAMPLE)).toEqual([]);
    const r = await settled(() => db.read(100n, 8));
    expect(r.kind === 'good' && r.value.equals(Buffer.alloc(8 * 512))).toBe(true);
  });

  it('refused with ILLEGAL REQUEST, COMMAND SEQUENCE ERROR while the primary writes alone; the secondary answers 04/0C', async () => {
    configureSanitize({ overwritePassMs: 20 });
    pair = await startPair();
    const da = await pair.open('A');
    const db = await pair.open('B');
    expect(senseOf(await settled(() => da.write(100n, block('kept', 8))))).toBe('good');
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.ga.machine.status === 'Stopped' && pair!.gb.machine.status === 'Stopped', 'both Stopped', 15_000);
    expect(senseOf(await sanitize(da, { fill: 0x11 }))).toBe('05/2c/00');
    expect(senseOf(await sanitize(db, { fill: 0x11 }))).toBe('02/04/0c');
    const r = await settled(() => da.read(100n, 8));
    expect(r.kind === 'good' && r.value.equals(block('kept', 8))).toBe(true);
  });

  it('negative control: a write that bypasses replication shows up as a difference', async () => {
    pair = await startPair();
    await pair.ga.stores[0].inner.write(4096n, block('only on A', 8));
    expect(await differences(pair, SAMPLE)).toEqual(['LBA 4096+8']);
  });
});
