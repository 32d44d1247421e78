/**
 * A LUN's configured NAA is the one it reports (SPC-5 §7.7.6.6): NAA 5 (8 bytes) and NAA 6 (16
 * bytes, LIO's 6001405… form) as written, over iSCSI in VPD 0x83; an NAA YAML reads as a number
 * (digits only) is taken back as its digits; anything that is not an NAA is a config error naming
 * the field. Before, every NAA was forced to 5 and cut to 8 bytes, and a digits-only one was lost.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { naaDesignatorBytes, parseNaa } from '../../protocol/scsi/vpd.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFile } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'arraysim-naa-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TARGET = 'iqn.2026-12.dev.arraysim:naa';

function config(luns: string) {
  const f = join(dir, `c${Math.random()}.yaml`);
  writeFileSync(f, `portals: [{listen: "127.0.0.1:0"}]\ntargets:\n  - name: ${TARGET}\n    luns:\n${luns}`);
  return configFromFile(f);
}

describe('NAA designators', () => {
  it('parseNaa takes NAA 2, 3, 5 as 8 bytes and NAA 6 as 16; nothing else', () => {
    expect(parseNaa('500140512345678A')?.toString('hex')).toBe('500140512345678a');
    expect(parseNaa('60014051234567890123456789abcdef')?.length).toBe(16);
    expect(parseNaa('6001405123456789')).toBeNull(); // NAA 6 is 16 bytes
    expect(parseNaa('50014051234567890123456789abcdef')).toBeNull(); // NAA 5 is 8
    expect(parseNaa('4001405123456789')).toBeNull(); // no NAA 4
    expect(naaDesignatorBytes('60014051234567890123456789abcdef').toString('hex')).toBe('60014051234567890123456789abcdef');
  });

  it('the config honours what is written and refuses what is not an NAA, naming the field', () => {
    const c = config('      - {spec: 1MiB, naa: 500140512345678A}\n      - {spec: 1MiB, naa: 5001405123456789}\n      - {spec: 1MiB, naa: naa.60014051234567890123456789abcdef}\n');
    expect(c.targets[0].luns.map((l) => l.naa)).toEqual(['500140512345678a', '5001405123456789', '60014051234567890123456789abcdef']);
    expect(() => config('      - {spec: 1MiB, naa: 4001405123456789}\n')).toThrow(/targets\[0\]\.luns\[0\]\.naa: "4001405123456789" is not an NAA designator/);
    expect(() => config('      - {spec: 1MiB, naa: "500140512345"}\n')).toThrow(/luns\[0\]\.naa/);
    // 17 significant digits: YAML's number is no longer exact, so the digits cannot be trusted.
    expect(() => config('      - {spec: 1MiB, naa: 90014051234567891}\n')).toThrow(/write the NAA in quotes/);
  });

  it('over iSCSI, VPD 0x83 reports each LUN\'s NAA as configured: 5 stays 5, 6 stays 6 with its 16 bytes', async () => {
    const c = config('      - {spec: 1MiB, naa: 500140512345678a}\n      - {spec: 1MiB, naa: 5001405123456789}\n      - {spec: 1MiB, naa: 60014051234567890123456789abcdef}\n');
    const array = await StorageArray.create(c, pino({ level: 'silent' }));
    await array.start();
    try {
      const got: string[] = [];
      for (const lun of [0, 1, 2]) {
        const d = await ScsiDevice.open(`iscsi://127.0.0.1:${c.portals[0].port}/${TARGET}/${lun}`);
        try {
          await d.clearUnitAttentions();
          got.push((await d.naa()).toString('hex'));
        } finally { await d.close(); }
      }
      expect(got).toEqual(['500140512345678a', '5001405123456789', '60014051234567890123456789abcdef']);
    } finally {
      await array.stop();
    }
  }, 60_000);
});
