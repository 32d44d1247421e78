/** Golden vectors for the Remote Copy link protocol: encode, decode, and framing split at every offset. */
import { describe, expect, it } from 'vitest';
import { encodeMessage, LinkFramer, MAX_PAYLOAD } from '../../protocol/replication/link.ts';
import type { LinkFrameEvent, LinkMessage } from '../../protocol/replication/link.ts';
import { crc32cBitwise, fields, frame } from './link-builder.ts';

const data = Buffer.from('0123456789abcdef'.repeat(64)); // two 512-byte blocks
const block = Buffer.alloc(512, 0xa5);
/** PR OUT parameter list (SPC-5 §6.17.3): RESERVATION KEY 0, SERVICE ACTION RESERVATION KEY 0xabc, flags 0. */
const prParams = Buffer.from('0000000000000000' + '0000000000000abc' + '00000000' + '00000000', 'hex');

/** Each vector: the message, its link sequence, and the bytes built field by field (`checkData` false: encoded with the data unchecked). */
const VECTORS: { name: string; seq: number; m: LinkMessage; bytes: Buffer; checkData?: boolean }[] = [
  {
    name: 'hello from the primary, one volume', seq: 0,
    m: { type: 'hello', arrayId: 'site-a', group: 'rcg1', role: 'primary', volumes: [{ wwn: '502a751000000001', serial: 'ASIMVOL1', blockSize: 512, blockCount: 2097152n }], epoch: 3, restarted: false, volatile: false, empty: false, ports: [1, 3] },
    bytes: frame(1, 0, fields(['str', 'site-a'], ['str', 'rcg1'], ['u8', 1], ['u16', 1], ['hex', '502a751000000001'], ['str', 'ASIMVOL1'], ['u32', 512], ['u64', 2097152n], ['u32', 3], ['u8', 0], ['u16', 2], ['u16', 1], ['u16', 3])),
  },
  {
    name: 'hello from a secondary that restarted on memory stores', seq: 0,
    m: { type: 'hello', arrayId: 'site-b', group: 'rcg1', role: 'secondary', volumes: [], epoch: 0, restarted: true, volatile: true, empty: true, ports: [] },
    bytes: frame(1, 0, fields(['str', 'site-b'], ['str', 'rcg1'], ['u8', 2], ['u16', 0], ['u32', 0], ['u8', 7], ['u16', 0])),
  },
  {
    name: 'replicated write, group seq 7, volume 0, FUA', seq: 1,
    m: { type: 'write', forwarded: false, seq: 7n, volume: 0, lba: 0x1234n, fua: true, data },
    bytes: frame(2, 1, Buffer.concat([fields(['u8', 0], ['u64', 7n], ['u16', 0], ['u8', 1], ['u64', 0x1234n]), data])),
  },
  {
    name: 'replicated write with its data unchecked (flag 0x0001: the CRC covers the 20 bytes of fields only)', seq: 1, checkData: false,
    m: { type: 'write', forwarded: false, seq: 7n, volume: 0, lba: 0x1234n, fua: true, data },
    bytes: frame(2, 1, Buffer.concat([fields(['u8', 0], ['u64', 7n], ['u16', 0], ['u8', 1], ['u64', 0x1234n]), data]), { flags: 1, crcBytes: 20 }),
  },
  {
    name: 'forwarded write (secondary → primary), request 3', seq: 2,
    m: { type: 'write', forwarded: true, seq: 3n, volume: 1, lba: 0n, fua: false, data: data.subarray(0, 512) },
    bytes: frame(2, 2, Buffer.concat([fields(['u8', 1], ['u64', 3n], ['u16', 1], ['u8', 0], ['u64', 0n]), data.subarray(0, 512)])),
  },
  {
    name: 'WRITE SAME record with UNMAP', seq: 3,
    m: { type: 'write-same', forwarded: false, seq: 8n, volume: 0, lba: 100n, blocks: 4096, unmap: true, block },
    bytes: frame(3, 3, Buffer.concat([fields(['u8', 0], ['u64', 8n], ['u16', 0], ['u8', 1], ['u64', 100n], ['u32', 4096]), block])),
  },
  {
    name: 'UNMAP, two ranges', seq: 4,
    m: { type: 'unmap', forwarded: false, seq: 9n, volume: 0, ranges: [{ lba: 0n, blocks: 8 }, { lba: 1n << 40n, blocks: 0xffffffff }] },
    bytes: frame(4, 4, fields(['u8', 0], ['u64', 9n], ['u16', 0], ['u16', 2], ['u64', 0n], ['u32', 8], ['u64', 1n << 40n], ['u32', 0xffffffff])),
  },
  {
    name: 'ack ok', seq: 5,
    m: { type: 'ack', forwarded: false, seq: 7n, status: 'ok' },
    bytes: frame(5, 5, fields(['u8', 0], ['u64', 7n], ['u8', 0])),
  },
  {
    name: 'ack of a forwarded write, refused: not primary', seq: 6,
    m: { type: 'ack', forwarded: true, seq: 3n, status: 'not-primary' },
    bytes: frame(5, 6, fields(['u8', 1], ['u64', 3n], ['u8', 4])),
  },
  {
    name: 'ack of a forwarded write, refused: PR state changing (retry)', seq: 6,
    m: { type: 'ack', forwarded: true, seq: 4n, status: 'pr-changed' },
    bytes: frame(5, 6, fields(['u8', 1], ['u64', 4n], ['u8', 5])),
  },
  {
    name: 'COMPARE AND WRITE request, one block', seq: 7,
    m: { type: 'compare-and-write', id: 11n, volume: 0, lba: 2048n, blocks: 1, fua: false, verify: data.subarray(0, 512), data: data.subarray(512) },
    bytes: frame(6, 7, Buffer.concat([fields(['u64', 11n], ['u16', 0], ['u8', 0], ['u64', 2048n], ['u32', 1]), data])),
  },
  {
    name: 'COMPARE AND WRITE result: miscompare at byte 17', seq: 8,
    m: { type: 'compare-and-write-result', id: 11n, outcome: 'miscompare', offset: 17 },
    bytes: frame(7, 8, fields(['u64', 11n], ['u8', 1], ['u32', 17])),
  },
  {
    name: 'COMPARE AND WRITE result: retry (a PR state on its way to the secondary)', seq: 8,
    m: { type: 'compare-and-write-result', id: 12n, outcome: 'retry', offset: 0 },
    bytes: frame(7, 8, fields(['u64', 12n], ['u8', 3], ['u32', 0])),
  },
  {
    name: 'heartbeat reply', seq: 0xffffffff,
    m: { type: 'heartbeat', nonce: 0xdeadbeefn, reply: true },
    bytes: frame(8, 0xffffffff, fields(['u64', 0xdeadbeefn], ['u8', 1])),
  },
  {
    name: 'error: geometry mismatch', seq: 9,
    m: { type: 'error', code: 'geometry-mismatch', message: 'volume 0: 512-byte blocks here, 4096 there' },
    bytes: frame(9, 9, fields(['u16', 2], ['str', 'volume 0: 512-byte blocks here, 4096 there'])),
  },
  {
    name: 'group state: Synced', seq: 10,
    m: { type: 'group-state', state: 'Synced', reason: 'resync done' },
    bytes: frame(10, 10, fields(['u8', 2], ['str', 'resync done'])),
  },
  {
    name: 'role swap: restore, epoch 5', seq: 11,
    m: { type: 'role-swap', epoch: 5, reverse: false, reason: 'setrcopygroup restore' },
    bytes: frame(11, 11, fields(['u32', 5], ['u8', 0], ['str', 'setrcopygroup restore'])),
  },
  {
    name: 'group-admin: creategroup from the primary (JSON request), on a connection of its own', seq: 0,
    m: { type: 'group-admin', request: '{"verb":"creategroup","group":"rcg9","target":"site-b","from":"site-a"}' },
    bytes: frame(15, 0, fields(['str', '{"verb":"creategroup","group":"rcg9","target":"site-b","from":"site-a"}'])),
  },
  {
    name: 'group-admin-result: refused', seq: 0,
    m: { type: 'group-admin-result', ok: false, reply: '{"ok":false,"status":409,"error":"x","field":"volume"}' },
    bytes: frame(16, 0, fields(['u8', 0], ['str', '{"ok":false,"status":409,"error":"x","field":"volume"}'])),
  },
  {
    name: 'PR OUT forwarded by the secondary: REGISTER through TPGT 2, 24-byte parameter list', seq: 12,
    m: {
      type: 'pr-out', id: 4n, volume: 0,
      nexus: { initiatorName: 'iqn.1994-05.com.example:node1', isid: '400001370000', targetName: 'iqn.2026-11.dev.arraysim:t', tpgt: 2, targetPortGroup: 2 },
      cdb: Buffer.from('5f000000000000001800', 'hex'), data: prParams,
    },
    bytes: frame(12, 12, Buffer.concat([fields(['u64', 4n], ['u16', 0], ['str', 'iqn.1994-05.com.example:node1'], ['str', '400001370000'], ['str', 'iqn.2026-11.dev.arraysim:t'],
      ['u16', 2], ['u16', 2], ['u8', 10], ['hex', '5f000000000000001800']), prParams])),
  },
  {
    name: 'PR OUT result: CHECK CONDITION, INVALID FIELD IN PARAMETER LIST at byte 20 bit 3', seq: 13,
    m: { type: 'pr-out-result', id: 4n, status: 2, reason: 'InvalidFieldInParameterList', fieldPointer: { inCdb: false, byte: 20, bit: 3 } },
    bytes: frame(13, 13, fields(['u64', 4n], ['u8', 2], ['str', 'InvalidFieldInParameterList'], ['u8', 0b101], ['u16', 20], ['u8', 3])),
  },
  {
    name: 'PR OUT result: RESERVATION CONFLICT, no sense', seq: 14,
    m: { type: 'pr-out-result', id: 5n, status: 0x18, reason: '', fieldPointer: null },
    bytes: frame(13, 14, fields(['u64', 5n], ['u8', 0x18], ['str', ''], ['u8', 0], ['u16', 0], ['u8', 0])),
  },
  {
    name: 'PR state after PREEMPT AND ABORT: two registrations (one ALL_TG_PT), WE-RO held by the first, one notice, abort', seq: 15,
    m: {
      type: 'pr-state', seq: 21n, volume: 1,
      state: {
        generation: 9, aptpl: false, reservation: { holder: 0, type: 5 },
        registrations: [
          { key: 0xaan, initiatorName: 'iqn.a', isid: '400001370000', targetPortName: 'iqn.t,t,0x0001', relativeTargetPortId: 1 },
          { key: 0xbbn, initiatorName: 'iqn.b', isid: null, targetPortName: null, relativeTargetPortId: 2 },
        ],
        notices: [{ reason: 'RegistrationsPreempted', except: 'iqn.a,i,0x400001370000|iqn.t,t,0x0001', regs: [{ initiatorName: 'iqn.c', isid: '400001370001', targetPortName: 'iqn.t,t,0x0002' }] }],
        abort: { except: 'iqn.a,i,0x400001370000|iqn.t,t,0x0001', regs: [{ initiatorName: 'iqn.c', isid: '400001370001', targetPortName: 'iqn.t,t,0x0002' }] },
        legacyHolder: null, reset: false,
      },
    },
    bytes: frame(14, 15, fields(['u64', 21n], ['u16', 1], ['u32', 9], ['u8', 0b110], ['u16', 0], ['u8', 5],
      ['u16', 2],
      ['u64', 0xaan], ['str', 'iqn.a'], ['u8', 1], ['str', '400001370000'], ['u8', 1], ['str', 'iqn.t,t,0x0001'], ['u16', 1],
      ['u64', 0xbbn], ['str', 'iqn.b'], ['u8', 0], ['u8', 0], ['u16', 2],
      ['u16', 1], ['str', 'RegistrationsPreempted'], ['str', 'iqn.a,i,0x400001370000|iqn.t,t,0x0001'],
      ['u16', 1], ['str', 'iqn.c'], ['u8', 1], ['str', '400001370001'], ['u8', 1], ['str', 'iqn.t,t,0x0002'],
      ['str', 'iqn.a,i,0x400001370000|iqn.t,t,0x0001'],
      ['u16', 1], ['str', 'iqn.c'], ['u8', 1], ['str', '400001370001'], ['u8', 1], ['str', 'iqn.t,t,0x0002'])),
  },
  {
    name: 'PR state shipped by a resync: nothing registered, APTPL set', seq: 16,
    m: { type: 'pr-state', seq: 1n, volume: 0, state: { generation: 0, aptpl: true, reservation: null, registrations: [], notices: [], abort: null, legacyHolder: null, reset: false } },
    bytes: frame(14, 16, fields(['u64', 1n], ['u16', 0], ['u32', 0], ['u8', 1], ['u16', 0], ['u16', 0])),
  },
  {
    // u64 fields past 2^53 (the encoder's and decoder's two-u32 shortcut does not apply), and an empty write.
    name: 'write with seq and LBA past 2^53, no data', seq: 0xffffffff,
    m: { type: 'write', forwarded: false, seq: 0xffffffffffffffffn, volume: 0xffff, lba: (1n << 53n) + 1n, fua: false, data: Buffer.alloc(0) },
    bytes: frame(2, 0xffffffff, fields(['u8', 0], ['u64', 0xffffffffffffffffn], ['u16', 0xffff], ['u8', 0], ['u64', (1n << 53n) + 1n])),
  },
  {
    name: 'ack of seq 2^53 - 1', seq: 9,
    m: { type: 'ack', forwarded: false, seq: (1n << 53n) - 1n, status: 'ok' },
    bytes: frame(5, 9, fields(['u8', 0], ['u64', (1n << 53n) - 1n], ['u8', 0])),
  },
  {
    name: 'ack of seq 2^53', seq: 10,
    m: { type: 'ack', forwarded: false, seq: 1n << 53n, status: 'not-applied' },
    bytes: frame(5, 10, fields(['u8', 0], ['u64', 1n << 53n], ['u8', 1])),
  },
  {
    name: 'PR state after RESERVE(6) through TPGT 2: the SPC-2 holder (flag 0x08) and its nexus key', seq: 17,
    m: { type: 'pr-state', seq: 2n, volume: 0, state: { generation: 0, aptpl: false, reservation: null, registrations: [], notices: [], abort: null, legacyHolder: 'iqn.a,i,0x400001370000|iqn.t,t,0x0002', reset: false } },
    bytes: frame(14, 17, fields(['u64', 2n], ['u16', 0], ['u32', 0], ['u8', 0b1000], ['u16', 0], ['u16', 0], ['str', 'iqn.a,i,0x400001370000|iqn.t,t,0x0002'])),
  },
  {
    name: 'PR state of a LOGICAL UNIT RESET (flag 0x10): no SPC-2 holder left, one registration kept', seq: 18,
    m: {
      type: 'pr-state', seq: 3n, volume: 0,
      state: { generation: 1, aptpl: false, reservation: null, registrations: [{ key: 0x11n, initiatorName: 'iqn.a', isid: null, targetPortName: null, relativeTargetPortId: 1 }], notices: [], abort: null, legacyHolder: null, reset: true },
    },
    bytes: frame(14, 18, fields(['u64', 3n], ['u16', 0], ['u32', 1], ['u8', 0b10000], ['u16', 1], ['u64', 0x11n], ['str', 'iqn.a'], ['u8', 0], ['u8', 0], ['u16', 1], ['u16', 0])),
  },
  {
    name: 'LOGICAL UNIT RESET forwarded by the secondary: a pr-out with no CDB and no parameter list', seq: 19,
    m: {
      type: 'pr-out', id: 6n, volume: 0,
      nexus: { initiatorName: 'iqn.a', isid: '400001370000', targetName: 'iqn.t', tpgt: 2, targetPortGroup: 2 },
      cdb: Buffer.alloc(0), data: Buffer.alloc(0),
    },
    bytes: frame(12, 19, fields(['u64', 6n], ['u16', 0], ['str', 'iqn.a'], ['str', '400001370000'], ['str', 'iqn.t'], ['u16', 2], ['u16', 2], ['u8', 0])),
  },
  {
    name: 'acks: the replicated writes of group seq 7 to 38 all applied (one frame for a read\'s worth)', seq: 20,
    m: { type: 'acks', first: 7n, last: 38n },
    bytes: frame(17, 20, fields(['u64', 7n], ['u64', 38n])),
  },
];

function norm(m: LinkMessage): unknown {
  return JSON.parse(JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v)));
}

function collect(chunks: Buffer[]): LinkFrameEvent[] {
  const f = new LinkFramer();
  const out: LinkFrameEvent[] = [];
  for (const c of chunks) f.push(Buffer.from(c), (e) => out.push(e.kind === 'message' ? { ...e, message: norm(e.message) as LinkMessage } : e));
  return out;
}

describe('link codec golden vectors', () => {
  it('the builder CRC32C is the Castagnoli CRC (RFC 3720 B.4: 32 bytes of zeros → 0x8a9136aa)', () => {
    expect(crc32cBitwise(Buffer.alloc(32))).toBe(0x8a9136aa);
  });

  for (const v of VECTORS) {
    it(`${v.name}: encodes to the built bytes and decodes back`, () => {
      expect(Buffer.concat(encodeMessage(v.m, v.seq, v.checkData)).toString('hex')).toBe(v.bytes.toString('hex'));
      expect(collect([v.bytes])).toEqual([{ kind: 'message', sequence: v.seq, message: norm(v.m) }]);
    });
  }

  it('all vectors back to back, split in two at every offset and fed one byte at a time, give the same messages', () => {
    const stream = Buffer.concat(VECTORS.map((v) => v.bytes));
    const want = VECTORS.map((v) => ({ kind: 'message', sequence: v.seq, message: norm(v.m) }));
    expect(collect([stream])).toEqual(want);
    for (let k = 0; k <= stream.length; k++) expect(collect([stream.subarray(0, k), stream.subarray(k)])).toEqual(want);
    expect(collect([...stream].map((b) => Buffer.from([b])))).toEqual(want);
  });

  it('large write data is not copied when the payload lies within one chunk', () => {
    const big = Buffer.alloc(1 << 20, 7);
    const chunk = Buffer.concat(encodeMessage({ type: 'write', forwarded: false, seq: 1n, volume: 0, lba: 0n, fua: false, data: big }, 0));
    let got: Buffer | null = null;
    new LinkFramer().push(chunk, (e) => { if (e.kind === 'message' && e.message.type === 'write') got = e.message.data; });
    expect(got!.buffer).toBe(chunk.buffer);
    expect(got!.equals(big)).toBe(true);
  });
});

describe('link codec refusals: the framer reports one error and stops', () => {
  const good = VECTORS[1].bytes;
  const unchecked = VECTORS[3].bytes;
  const cases: { name: string; bytes: Buffer; code: string }[] = [
    { name: 'bad magic', bytes: frame(2, 1, good.subarray(24), { magic: 0x41525244 }), code: 'bad-magic' },
    { name: 'other version (1: a hello without the epoch)', bytes: frame(2, 1, good.subarray(24), { version: 1 }), code: 'bad-version' },
    { name: 'other version (2: a hello without the restart flags)', bytes: frame(2, 1, good.subarray(24), { version: 2 }), code: 'bad-version' },
    { name: 'other version (3: an array without persistent reservation replication)', bytes: frame(2, 1, good.subarray(24), { version: 3 }), code: 'bad-version' },
    { name: 'other version (4: an array without RESERVE/RELEASE and LU reset replication)', bytes: frame(2, 1, good.subarray(24), { version: 4 }), code: 'bad-version' },
    { name: 'other version (5: an array without the DATA_UNCHECKED flag)', bytes: frame(2, 1, good.subarray(24), { version: 5 }), code: 'bad-version' },
    { name: 'DATA_UNCHECKED on a message that is not a write (an ack)', bytes: frame(5, 1, fields(['u8', 0], ['u64', 7n], ['u8', 0]), { flags: 1 }), code: 'bad-flags' },
    { name: 'an unknown header flag (0x0002) on a write', bytes: frame(2, 1, Buffer.concat([fields(['u8', 0], ['u64', 7n], ['u16', 0], ['u8', 0], ['u64', 0n]), data]), { flags: 2 }), code: 'bad-flags' },
    { name: 'PR state with an unknown flag (0x20)', bytes: frame(14, 1, fields(['u64', 1n], ['u16', 0], ['u32', 0], ['u8', 0x20], ['u16', 0], ['u16', 0])), code: 'bad-payload' },
    { name: 'PR state whose holder is not a registration', bytes: frame(14, 1, fields(['u64', 1n], ['u16', 0], ['u32', 0], ['u8', 2], ['u16', 0], ['u8', 1], ['u16', 0], ['u16', 0])), code: 'bad-payload' },
    { name: 'PR OUT result with a field pointer bit above 7', bytes: frame(13, 1, fields(['u64', 1n], ['u8', 2], ['str', 'x'], ['u8', 0b101], ['u16', 1], ['u8', 9])), code: 'bad-payload' },
    { name: 'damaged length field', bytes: (() => { const b = Buffer.from(good); b[11] ^= 1; return b; })(), code: 'bad-header-crc' },
    { name: 'damaged payload', bytes: (() => { const b = Buffer.from(good); b[40] ^= 0x80; return b; })(), code: 'bad-data-crc' },
    { name: 'oversize payload', bytes: (() => { const h = frame(2, 1, Buffer.alloc(0)); h.writeUInt32BE(MAX_PAYLOAD + 1, 8); h.writeUInt32LE(crc32cBitwise(h.subarray(0, 20)), 20); return h; })(), code: 'oversize' },
    { name: 'unknown type', bytes: frame(0x77, 1, Buffer.alloc(4)), code: 'unknown-type' },
    { name: 'truncated fields', bytes: frame(5, 1, fields(['u8', 0], ['u64', 7n])), code: 'bad-payload' },
    { name: 'trailing bytes', bytes: frame(5, 1, fields(['u8', 0], ['u64', 7n], ['u8', 0], ['u8', 9])), code: 'bad-payload' },
    { name: 'acks run that is not a run (last = first)', bytes: frame(17, 1, fields(['u64', 7n], ['u64', 7n])), code: 'bad-payload' },
    { name: 'acks run backwards', bytes: frame(17, 1, fields(['u64', 8n], ['u64', 7n])), code: 'bad-payload' },
    { name: 'unknown ack status', bytes: frame(5, 1, fields(['u8', 0], ['u64', 7n], ['u8', 99])), code: 'bad-payload' },
    { name: 'unknown hello flag', bytes: frame(1, 0, fields(['str', 'a'], ['str', 'g'], ['u8', 1], ['u16', 0], ['u32', 0], ['u8', 8], ['u16', 0])), code: 'bad-payload' },
    { name: 'flag byte not 0/1', bytes: frame(5, 1, fields(['u8', 2], ['u64', 7n], ['u8', 0])), code: 'bad-payload' },
    { name: 'write: FUA byte not 0/1', bytes: frame(2, 1, Buffer.concat([fields(['u8', 0], ['u64', 7n], ['u16', 0], ['u8', 2], ['u64', 0n]), data])), code: 'bad-payload' },
    { name: 'write: shorter than its fields', bytes: frame(2, 1, fields(['u8', 0], ['u64', 7n], ['u16', 0], ['u8', 0])), code: 'bad-payload' },
    { name: 'write: damaged data', bytes: (() => { const b = Buffer.from(VECTORS[2].bytes); b[b.length - 1] ^= 1; return b; })(), code: 'bad-data-crc' },
    { name: 'write: damaged field', bytes: (() => { const b = Buffer.from(VECTORS[2].bytes); b[30] ^= 1; return b; })(), code: 'bad-data-crc' },
    { name: 'ack: damaged field', bytes: (() => { const b = Buffer.from(VECTORS[7].bytes); b[30] ^= 1; return b; })(), code: 'bad-data-crc' },
    { name: 'write with its data unchecked: a damaged field is still caught', bytes: (() => { const b = Buffer.from(unchecked); b[30] ^= 1; return b; })(), code: 'bad-data-crc' },
    { name: 'write with its data unchecked: a damaged length is still caught', bytes: (() => { const b = Buffer.from(unchecked); b[11] ^= 1; return b; })(), code: 'bad-header-crc' },
    { name: 'write with its data unchecked: the flag cleared on the way is caught (header CRC)', bytes: (() => { const b = Buffer.from(unchecked); b[7] = 0; return b; })(), code: 'bad-header-crc' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const ev = collect([c.bytes, VECTORS[6].bytes]);
      expect(ev).toHaveLength(1);
      expect(ev[0].kind).toBe('error');
      expect((ev[0] as { error: { code: string } }).error.code).toBe(c.code);
    });
  }
});

describe('link data integrity (peers.dataIntegrity)', () => {
  it('checked (the default): a damaged byte of a write\'s data is caught', () => {
    const b = Buffer.concat(encodeMessage({ type: 'write', forwarded: false, seq: 1n, volume: 0, lba: 0n, fua: false, data }, 0));
    b[b.length - 100] ^= 0x10;
    const ev = collect([b]);
    expect(ev).toEqual([{ kind: 'error', error: expect.objectContaining({ code: 'bad-data-crc' }) }]);
  });

  it('negative control: unchecked, the same damage passes the framer (what the option leaves to TCP)', () => {
    const b = Buffer.concat(encodeMessage({ type: 'write', forwarded: false, seq: 1n, volume: 0, lba: 0n, fua: false, data }, 0, false));
    b[b.length - 100] ^= 0x10;
    const ev = collect([b]);
    expect(ev).toHaveLength(1);
    expect(ev[0].kind).toBe('message');
    const got = (ev[0] as unknown as { message: { data: string } }).message.data;
    expect(got).not.toBe(data.toString('hex'));
  });
});
