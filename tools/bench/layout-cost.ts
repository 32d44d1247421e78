/**
 * Measures what a declarative buffer-layout decode of the 48-byte BHS costs against the
 * hand-coded decodePdu in protocol/iscsi/pdu.ts, for the SCSI Command PDU (the hot path).
 * Run: npx tsx tools/bench/layout-cost.ts
 */
import * as BL from 'buffer-layout';
import { decodePdu } from '../../protocol/iscsi/pdu.ts';

const L = BL as any;
const scsiCommand = L.struct([
  L.u8('opcode'), L.u8('flags'), L.u16be('reserved'), L.u8('totalAhsLength'), L.blob(3, 'dsl'), L.blob(8, 'lun'),
  L.u32be('itt'), L.u32be('edtl'), L.u32be('cmdSN'), L.u32be('expStatSN'), L.blob(16, 'cdb'),
]);

const bhs = Buffer.alloc(48);
bhs[0] = 0x01; bhs[1] = 0xc1; bhs.writeUInt32BE(7, 16); bhs.writeUInt32BE(4096, 20); bhs.writeUInt32BE(9, 24); bhs[32] = 0x28;
const empty = Buffer.alloc(0);

function time(name: string, n: number, fn: () => unknown): number {
  for (let i = 0; i < 100000; i++) fn();
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < n; i++) sink += (fn() as any) ? 1 : 0;
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${name.padEnd(28)} ${ns.toFixed(1)} ns/PDU (${sink === n ? 'ok' : 'x'})`);
  return ns;
}

const N = 2_000_000;
const hand = time('hand-coded decodePdu', N, () => decodePdu(bhs, null, empty));
const decl = time('buffer-layout struct.decode', N, () => scsiCommand.decode(bhs));
console.log(`buffer-layout / hand-coded: ${(decl / hand).toFixed(1)}x`);
