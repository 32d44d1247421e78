/**
 * LinkReader (src/replication/link-reader.ts): a link socket is read into one buffer, reused
 * while no chunk's view is kept, and replaced when one is (the kept view must never be written
 * over by a later read).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LinkReader } from '../../src/replication/link-reader.ts';

const closers: (() => void)[] = [];
afterEach(() => { for (const c of closers.splice(0)) c(); });

/** A LinkReader dialled to a loopback server; `send` writes from the server's side and waits for the chunk. */
async function pair(): Promise<{ reader: LinkReader; send: (b: Buffer) => Promise<void>; got: () => Buffer[] }> {
  const got: Buffer[] = [];
  const reader = new LinkReader();
  let waiting: (() => void) | null = null;
  reader.onChunk = (chunk) => { got.push(chunk); waiting?.(); };
  const sender = await new Promise<net.Socket>((resolve) => {
    const srv = net.createServer((s) => resolve(s));
    closers.push(() => srv.close());
    srv.listen(0, '127.0.0.1', () => {
      const c = reader.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
      closers.push(() => c.destroy());
    });
  });
  closers.push(() => sender.destroy());
  return {
    reader,
    got: () => got,
    send: async (b: Buffer) => {
      const n = got.length;
      const arrived = new Promise<void>((r) => { waiting = () => { if (got.length > n) r(); }; });
      sender.write(b);
      await arrived;
    },
  };
}

describe('LinkReader', () => {
  it('reads every chunk into the same buffer while no view is kept', async () => {
    const { send, got } = await pair();
    await send(Buffer.from('first'));
    await send(Buffer.from('second'));
    expect(got()[0].buffer).toBe(got()[1].buffer);
    expect(got()[1].toString()).toBe('second');
  });

  it('a kept view is not written over: the next read goes after it in the buffer', async () => {
    const { reader, send, got } = await pair();
    const orig = reader.onChunk;
    reader.onChunk = (c) => { orig(c); reader.retained = true; };
    await send(Buffer.from('kept-one'));
    reader.onChunk = orig;
    await send(Buffer.from('XXXXXXXXXXXXXXXX'));
    expect(got()[0].toString()).toBe('kept-one');
    expect(got()[1].buffer).toBe(got()[0].buffer);
    expect(got()[1].byteOffset).toBe(got()[0].byteOffset + got()[0].length);
    expect(reader.renewed).toBe(0);
  });

  it('kept reads fill the buffer, then the next read goes to a new one; unkept reads go over the same bytes (onread driven by hand)', () => {
    const r = new LinkReader();
    const chunks: Buffer[] = [];
    let keep = true;
    r.onChunk = (c) => { chunks.push(c); r.retained = keep; };
    const read = (n: number, v: number) => { const b = r.onread.buffer(); b.fill(v, 0, n); r.onread.callback(n, b); };
    read(60 * 1024, 1); read(60 * 1024, 2); read(60 * 1024, 3); // 180 KiB kept: 76 KiB left, enough for a read
    expect(r.renewed).toBe(0);
    read(60 * 1024, 4); // 240 KiB kept: 16 KiB left, under MIN_READ_BYTES
    expect(r.renewed).toBe(0);
    keep = false;
    read(1000, 5); // into a new buffer
    expect(r.renewed).toBe(1);
    expect(chunks[4].buffer).not.toBe(chunks[0].buffer);
    read(1000, 6); // not kept before: the same bytes again
    expect(chunks[5].byteOffset).toBe(chunks[4].byteOffset);
    for (let i = 0; i < 4; i++) expect(chunks[i].every((x) => x === i + 1), `kept chunk ${i}`).toBe(true);
    expect(new Set(chunks.slice(0, 4).map((c) => c.buffer)).size).toBe(1);
  });

  it('negative control: without `retained` the first chunk is overwritten by the second read', async () => {
    const { send, got } = await pair();
    await send(Buffer.from('kept-one'));
    await send(Buffer.from('XXXXXXXX'));
    expect(got()[0].toString()).toBe('XXXXXXXX');
  });
});

describe('LinkReader under a one-way partition (link-faults.ts)', () => {
  it("'in' stops reading a link socket that reads through onread, and healing it resumes the same connection", async () => {
    const { startPair, block, settled, senseOf } = await import('./pair.ts');
    const pair = await startPair();
    try {
      const da = await pair.open('A');
      const downs = pair.ga.stats.linkDowns + pair.gb.stats.linkDowns;
      pair.b.rcopy!.setLink({ oneWay: 'in' });
      let done = false;
      const w = settled(() => da.write(0n, block('partitioned', 8))).then((r) => { done = true; return r; });
      await new Promise((r) => setTimeout(r, 400));
      expect(done).toBe(false); // B reads nothing, so it neither applies nor acks
      pair.b.rcopy!.setLink({ oneWay: null });
      expect(senseOf(await w)).toBe('good');
      expect(pair.ga.stats.linkDowns + pair.gb.stats.linkDowns).toBe(downs); // the same connection, not a redial
    } finally { await pair.close(); }
  });
});

describe('LinkReader with a secondary whose store applies later', () => {
  it('a replicated write the secondary applies after its read callback keeps its data: 64 writes at once read back intact through B', async () => {
    const { startPair, block, settled, senseOf } = await import('./pair.ts');
    const pair = await startPair();
    try {
      // B's store finishes each write a millisecond later, holding the data it was given until
      // then (as a file store does): that data is a view of B's link read buffer.
      const inner = pair.gb.stores[0].inner;
      const write = inner.write.bind(inner);
      inner.write = (lba, data, fua) => new Promise<void>((r) => setTimeout(r, 1)).then(() => write(lba, Buffer.from(data), fua));
      const da = await pair.open('A');
      const want = Array.from({ length: 64 }, (_, i) => block(`later ${i}`, 8));
      const rs = await Promise.all(want.map((d, i) => settled(() => da.write(BigInt(i * 8), d))));
      expect(rs.map(senseOf)).toEqual(want.map(() => 'good'));
      const db = await pair.open('B');
      for (let i = 0; i < want.length; i++) {
        const got = await settled(() => db.read(BigInt(i * 8), 8));
        expect(got.kind === 'good' && got.value.equals(want[i]), `block ${i}`).toBe(true);
      }
    } finally { await pair.close(); }
  });
});
