import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/iscsi/buffer-pool.ts';

describe('BufferPool', () => {
  it('hands a released buffer out again, once', () => {
    const p = new BufferPool(1 << 20, 1024);
    const a = p.take(4096);
    p.release(a);
    p.release(a); // a second release must not let two owners share it
    expect(p.take(4096)).toBe(a);
    expect(p.take(4096)).not.toBe(a);
  });

  it('ignores views, small buffers and anything past its byte budget', () => {
    const p = new BufferPool(8192, 1024);
    const a = p.take(4096);
    p.release(a.subarray(0, 2048));
    p.release(Buffer.allocUnsafe(512));
    expect(p.take(2048)).not.toBe(a.subarray(0, 2048));
    const b = p.take(4096);
    const c = p.take(4096);
    const d = p.take(4096);
    p.release(b); p.release(c); p.release(d); // only 8 KiB kept
    const got = new Set([p.take(4096), p.take(4096), p.take(4096)]);
    expect(got.has(b) && got.has(c) && !got.has(d)).toBe(true);
  });
});
