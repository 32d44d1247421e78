/**
 * peers.dataIntegrity (README "Link data integrity"): whether a write's data is in the link CRC.
 * The codec side (a damaged byte caught when checked, passing when not) is in link-codec.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { checksData } from '../../src/replication/engine.ts';
import { rcopySections } from '../../src/replication/config.ts';
import { startPair, settled, senseOf, block } from './pair.ts';
import type { Pair } from './pair.ts';

describe('which links check write data', () => {
  it('auto: not on loopback (IPv4 127/8, ::1, IPv4-mapped), everywhere else; crc32c and none as they say', () => {
    expect(checksData('auto', '127.0.2.1')).toBe(false);
    expect(checksData('auto', '::1')).toBe(false);
    expect(checksData('auto', '::ffff:127.0.0.1')).toBe(false);
    expect(checksData('auto', '10.0.0.2')).toBe(true);
    expect(checksData('auto', 'fe80::1')).toBe(true);
    expect(checksData('auto', undefined)).toBe(true);
    expect(checksData('crc32c', '127.0.2.1')).toBe(true);
    expect(checksData('none', '10.0.0.2')).toBe(false);
  });

  it('the configuration takes auto, crc32c or none, and refuses anything else', () => {
    const err = (m: string) => new Error(m);
    expect(rcopySections({ peers: { name: 'a', dataIntegrity: 'crc32c' } }, 't', err).peers!.dataIntegrity).toBe('crc32c');
    expect(rcopySections({ peers: { name: 'a' } }, 't', err).peers!.dataIntegrity).toBeUndefined();
    expect(() => rcopySections({ peers: { name: 'a', dataIntegrity: 'md5' } }, 't', err)).toThrow(/peers.dataIntegrity must be one of auto, crc32c, none/);
  });
});

describe('a pair with its write data checked, and one without', () => {
  let pair: Pair | null = null;
  afterEach(async () => { await pair?.close(); pair = null; });

  for (const mode of ['crc32c', 'auto'] as const) {
    it(`${mode}: both arrays ${mode === 'crc32c' ? 'check' : 'do not check (loopback)'} write data, and writes through either array read back through the other`, async () => {
      pair = await startPair({ dataIntegrity: mode });
      expect(pair.ga.dataChecked).toBe(mode === 'crc32c');
      expect(pair.gb.dataChecked).toBe(mode === 'crc32c');
      const da = await pair.open('A');
      const db = await pair.open('B');
      for (let i = 0; i < 20; i++) {
        const [w, r] = i % 2 ? [da, db] : [db, da];
        const data = block(`${mode} ${i}`, 8);
        expect(senseOf(await settled(() => w.write(BigInt(i * 8), data)))).toBe('good');
        const got = await settled(() => r.read(BigInt(i * 8), 8));
        expect(got.kind === 'good' && got.value.equals(data)).toBe(true);
      }
    });
  }
});
