/** The SBC command-table entries are well formed (STYLE.md habit 2: the table is the truth). */
import { describe, expect, it } from 'vitest';
import { COMMAND_TABLE } from '../../src/scsi/table.ts';
import { tableKey } from '../../src/scsi/command.ts';
import { SBC_COMMANDS } from '../../src/scsi/sbc.ts';

describe('SBC_COMMANDS', () => {
  it('every entry is in the command table under its opcode/service action', () => {
    for (const d of SBC_COMMANDS) expect(COMMAND_TABLE.get(tableKey(d.opcode, d.serviceAction))).toBe(d);
  });

  it('usage data is one byte per CDB byte, starting with the opcode (and service action)', () => {
    for (const d of SBC_COMMANDS) {
      expect(d.usage.length, d.name).toBe(d.cdbLength);
      expect(d.usage[0], d.name).toBe(d.opcode);
      if (d.serviceAction !== undefined) expect(d.usage[1] & 0x1f, d.name).toBe(d.serviceAction);
    }
  });

  it('every command that writes the medium declares its extents', () => {
    for (const d of SBC_COMMANDS) {
      if (d.reservation === 'write' && d.splitter !== 'none') expect(typeof d.writes, d.name).toBe('function');
    }
  });

  it('media commands need the medium; START STOP UNIT and PREVENT ALLOW do not', () => {
    for (const d of SBC_COMMANDS) {
      const medium = d.opcode !== 0x1b && d.opcode !== 0x1e;
      expect(!!d.needsMedium, d.name).toBe(medium);
    }
  });
});
