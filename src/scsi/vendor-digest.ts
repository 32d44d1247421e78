/**
 * REGION DIGEST, a vendor-specific command (SPC-5 §4.3.4.1: operation codes C0h-FFh are vendor
 * specific): the digest of each 64 KiB piece of a range of blocks (its CRC32C XOR its CRC-32,
 * src/splitter/digest.ts), the digest that verify and the first-initialization sweep compare. A remote copy (CRR) of a consistency
 * group compares its replica on another arraysim with production by asking that array for its
 * digests over the iSCSI session: 4 bytes per 64 KiB cross the link instead of the data, which is
 * what makes a sweep after dd seeding send only what differs (the field notes' "21 GB of 330 GB").
 * RecoverPoint's appliances do the same with their own protocol between sites; here the remote
 * array stays a plain `arraysim serve`.
 *
 * CDB (16 bytes): byte 0 opcode C1h; bytes 2-9 LOGICAL BLOCK ADDRESS; bytes 10-13 NUMBER OF
 * LOGICAL BLOCKS (at most 64 MiB); bytes 14-15 ALLOCATION LENGTH (the parameter data is small).
 * Parameter data: byte 0 bit 0 DEALLOCATED (the store reports the whole range deallocated: no
 * digest follows, it reads zeros, LBPRZ=1); bytes 4-7 PIECES; then PIECES × 4-byte digest.
 */
import type { CommandDef } from './command.ts';
import { checkRange, invalidField, reserved } from './cdb.ts';
import { MEDIA } from './sbc-common.ts';
import { shared } from './range-lock.ts';
import { ScsiStatus } from './types.ts';
import type { ScsiResponse } from './types.ts';
import type { BackingStore } from '../store/store.ts';
import { regionDigest } from '../splitter/digest.ts';

export const REGION_DIGEST_OPCODE = 0xc1;
/** The most one command digests: 64 MiB of 512-byte blocks (a sweep asks for 1 MiB regions). */
export const REGION_DIGEST_MAX_BYTES = 64 << 20;
const PIECE = 64 << 10;

interface RegionDigestCmd { lba: bigint; blocks: number; allocation: number }

const REGION_DIGEST: CommandDef<RegionDigestCmd> = {
  opcode: REGION_DIGEST_OPCODE, name: 'REGION DIGEST (vendor specific)', cdbLength: 16,
  usage: [REGION_DIGEST_OPCODE, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  dataDirection: 'in', reservation: 'read', splitter: 'none', ...MEDIA,
  decode: (cdb, lu) => {
    reserved(cdb, 1, 0xff);
    const lba = cdb.readBigUInt64BE(2);
    const blocks = cdb.readUInt32BE(10);
    if (blocks * lu.blockSize > REGION_DIGEST_MAX_BYTES) throw invalidField(10);
    checkRange(lu, lba, blocks);
    return { lba, blocks, allocation: cdb.readUInt16BE(14) };
  },
  execute: (ctx, c) => shared(ctx.lu, c.lba, c.blocks, () => digestOf(ctx.lu.store, c)),
};

function digestOf(store: BackingStore, c: RegionDigestCmd): ScsiResponse | Promise<ScsiResponse> {
  const m = store.mapping?.(c.lba);
  const respond = (body: Buffer | null): ScsiResponse => {
    const pieces = body ? body.length / 4 : 0;
    const data = Buffer.alloc(8 + 4 * pieces);
    if (!body) data[0] = 1;
    data.writeUInt32BE(pieces, 4);
    body?.copy(data, 8);
    return { status: ScsiStatus.Good, data: data.length > c.allocation ? data.subarray(0, c.allocation) : data, sense: null };
  };
  if (m && !m.mapped && m.blocks >= BigInt(c.blocks)) return respond(null);
  const d = store.read(c.lba, c.blocks);
  return d instanceof Promise ? d.then((b) => respond(regionDigest(b))) : respond(regionDigest(d));
}

/** Parameter data bytes for `bytes` of blocks (what the initiator allocates). */
export function regionDigestLength(bytes: number): number { return 8 + 4 * Math.ceil(bytes / PIECE); }

export const VENDOR_COMMANDS: CommandDef[] = [REGION_DIGEST];
