/** Golden vectors for the quorum witness protocol: encode, decode, framing split at every offset, and refusals. */
import { describe, expect, it } from 'vitest';
import { encodeWitness, WitnessFramer } from '../../protocol/replication/witness.ts';
import type { WitnessFrameEvent, WitnessMessage } from '../../protocol/replication/witness.ts';
import { crc32cBitwise, fields } from './link-builder.ts';

/** Header (magic "ARWT", version 1, type, flags 0, length, CRC32C of header bytes 0..11 then payload, LSB first) + payload. */
function wframe(type: number, payload: Buffer, o: { version?: number; magic?: number; crcDelta?: number } = {}): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(o.magic ?? 0x41525754, 0);
  h[4] = o.version ?? 1;
  h[5] = type;
  h.writeUInt32BE(payload.length, 8);
  h.writeUInt32LE((crc32cBitwise(Buffer.concat([h.subarray(0, 12), payload])) + (o.crcDelta ?? 0)) >>> 0, 12);
  return Buffer.concat([h, payload]);
}

const VECTORS: { name: string; m: WitnessMessage; bytes: Buffer }[] = [
  {
    name: 'heartbeat from site-a: rcg1 primary Synced, link up, epoch 0',
    m: { type: 'heartbeat', array: 'site-a', nonce: 7n, groups: [{ group: 'rcg1', role: 'primary', status: 'Synced', link: true, syncedAtLoss: false, failover: false, epoch: 0 }] },
    //                      array             nonce        1 group       name            role 1     Synced=2   flags link  epoch
    bytes: wframe(1, fields(['str', 'site-a'], ['u64', 7n], ['u16', 1], ['str', 'rcg1'], ['u8', 1], ['u8', 2], ['u8', 1], ['u32', 0])),
  },
  {
    name: 'heartbeat from site-b: secondary Stopped, link down, was Synced, asks failover, epoch 3; second group',
    m: {
      type: 'heartbeat', array: 'site-b', nonce: 0xffffffffffffffffn, groups: [
        { group: 'rcg1', role: 'secondary', status: 'Stopped', link: false, syncedAtLoss: true, failover: true, epoch: 3 },
        { group: 'rcg2', role: 'primary', status: 'Failsafe', link: false, syncedAtLoss: false, failover: false, epoch: 0x01020304 },
      ],
    },
    bytes: wframe(1, fields(['str', 'site-b'], ['u64', 0xffffffffffffffffn], ['u16', 2],
      ['str', 'rcg1'], ['u8', 2], ['u8', 0], ['u8', 6], ['u32', 3],
      ['str', 'rcg2'], ['u8', 1], ['u8', 3], ['u8', 0], ['u32', 0x01020304])),
  },
  {
    name: 'heartbeat from site-a with groups to forget (removed from both arrays): no group reported, two named after',
    m: { type: 'heartbeat', array: 'site-a', nonce: 8n, groups: [], forget: ['rcg1', 'rcg9'] },
    //                      array             nonce        0 groups      2 to forget   names
    bytes: wframe(1, fields(['str', 'site-a'], ['u64', 8n], ['u16', 0], ['u16', 2], ['str', 'rcg1'], ['str', 'rcg9'])),
  },
  {
    name: 'verdict: owner site-b epoch 4 granted, peer site-a lost (its link was up), recorded Stopped',
    m: { type: 'verdict', nonce: 9n, witness: 'w1', groups: [{ group: 'rcg1', owner: 'site-b', epoch: 4, peer: 'site-a', peerSight: 'lost', peerLink: true, recorded: 'Stopped', granted: true }] },
    //                 nonce        witness       1 group       name            owner             epoch       peer              lost=2     Stopped=0  flags peerLink|granted
    bytes: wframe(2, fields(['u64', 9n], ['str', 'w1'], ['u16', 1], ['str', 'rcg1'], ['str', 'site-b'], ['u32', 4], ['str', 'site-a'], ['u8', 2], ['u8', 0], ['u8', 3])),
  },
  {
    name: 'verdict before any primary reported: no owner, peer unknown',
    m: { type: 'verdict', nonce: 0n, witness: '', groups: [{ group: 'g', owner: '', epoch: 0, peer: '', peerSight: 'unknown', peerLink: false, recorded: 'Syncing', granted: false }] },
    bytes: wframe(2, fields(['u64', 0n], ['str', ''], ['u16', 1], ['str', 'g'], ['str', ''], ['u32', 0], ['str', ''], ['u8', 0], ['u8', 1], ['u8', 0])),
  },
  {
    name: 'error',
    m: { type: 'error', message: 'heartbeat names no array' },
    bytes: wframe(3, fields(['str', 'heartbeat names no array'])),
  },
];

function parseAll(chunks: Buffer[]): WitnessFrameEvent[] {
  const f = new WitnessFramer();
  const out: WitnessFrameEvent[] = [];
  for (const c of chunks) f.push(c, (e) => out.push(e));
  return out;
}

describe('witness protocol golden vectors', () => {
  for (const v of VECTORS) {
    it(`encodes: ${v.name}`, () => { expect(encodeWitness(v.m).toString('hex')).toBe(v.bytes.toString('hex')); });
    it(`decodes: ${v.name}`, () => { expect(parseAll([v.bytes])).toEqual([{ kind: 'message', message: v.m }]); });
    it(`decodes split at every offset: ${v.name}`, () => {
      for (let k = 1; k < v.bytes.length; k++) {
        expect(parseAll([v.bytes.subarray(0, k), v.bytes.subarray(k)])).toEqual([{ kind: 'message', message: v.m }]);
      }
    });
  }

  it('decodes all vectors back to back in one chunk, and byte by byte', () => {
    const all = Buffer.concat(VECTORS.map((v) => v.bytes));
    const want = VECTORS.map((v) => ({ kind: 'message', message: v.m }));
    expect(parseAll([all])).toEqual(want);
    expect(parseAll([...all].map((x) => Buffer.from([x])))).toEqual(want);
  });
});

describe('witness protocol refusals', () => {
  const good = VECTORS[0].bytes;
  const err = (b: Buffer) => { const e = parseAll([b]); expect(e).toHaveLength(1); return e[0].kind === 'error' ? e[0].error.code : 'message'; };
  it('bad magic, version, CRC, oversize, unknown type, trailing bytes, bad flags are errors with their code', () => {
    expect(err(wframe(1, good.subarray(16), { magic: 0x41525243 }))).toBe('bad-magic');
    expect(err(wframe(1, good.subarray(16), { version: 2 }))).toBe('bad-version');
    expect(err(wframe(1, good.subarray(16), { crcDelta: 1 }))).toBe('bad-crc');
    const big = Buffer.from(good); big.writeUInt32BE(64 * 1024 + 1, 8);
    expect(err(big)).toBe('oversize');
    expect(err(wframe(9, Buffer.alloc(0)))).toBe('unknown-type');
    expect(err(wframe(3, Buffer.concat([fields(['str', 'x']), Buffer.from([0])])))).toBe('bad-payload');
    expect(err(wframe(1, fields(['str', 'a'], ['u64', 1n], ['u16', 1], ['str', 'g'], ['u8', 1], ['u8', 2], ['u8', 8], ['u32', 0])))).toBe('bad-payload');
    expect(err(wframe(1, fields(['str', 'a'], ['u64', 1n], ['u16', 1], ['str', 'g'], ['u8', 3], ['u8', 2], ['u8', 0], ['u32', 0])))).toBe('bad-payload');
    expect(err(wframe(1, fields(['str', 'a'], ['u64', 1n], ['u16', 2], ['str', 'g'], ['u8', 1], ['u8', 2], ['u8', 0], ['u32', 0])))).toBe('bad-payload');
    // After the groups: a list to forget, never empty (it is left out), never cut short.
    expect(err(wframe(1, fields(['str', 'a'], ['u64', 1n], ['u16', 0], ['u16', 0])))).toBe('bad-payload');
    expect(err(wframe(1, fields(['str', 'a'], ['u64', 1n], ['u16', 0], ['u8', 1])))).toBe('bad-payload');
    expect(err(wframe(1, fields(['str', 'a'], ['u64', 1n], ['u16', 0], ['u16', 2], ['str', 'g'])))).toBe('bad-payload');
    expect(err(wframe(1, fields(['str', 'a'], ['u64', 1n], ['u16', 0], ['u16', 1], ['str', 'g'], ['u8', 0])))).toBe('bad-payload');
  });
  it('after an error the framer stays failed', () => {
    const f = new WitnessFramer();
    const out: WitnessFrameEvent[] = [];
    f.push(wframe(1, good.subarray(16), { version: 9 }), (e) => out.push(e));
    f.push(good, (e) => out.push(e));
    expect(out.map((e) => e.kind)).toEqual(['error']);
  });
});
