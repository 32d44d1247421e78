/**
 * Latency classes come from the command table: the expected class of the commands people graph,
 * and the I/O path's per-opcode shortcut agreeing with the table for every entry.
 */
import { describe, expect, it } from 'vitest';
import { COMMAND_CLASSES, classOfCdb, commandClass } from '../../src/metrics/command-class.ts';
import { ALL_COMMANDS } from '../../src/scsi/table.ts';

function cdbOf(opcode: number, serviceAction?: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = opcode;
  if (serviceAction !== undefined) c[1] = serviceAction & 0x1f;
  return c;
}
const byName = (name: string) => {
  const d = ALL_COMMANDS.find((x) => x.name === name);
  if (!d) throw new Error(`no command ${name} in the table`);
  return d;
};

describe('command latency class', () => {
  it('media reads are read, host-data writes are write, the VAAI offloads are vaai, the rest other', () => {
    for (const n of ['READ(6)', 'READ(10)', 'READ(12)', 'READ(16)']) expect(commandClass(byName(n)), n).toBe('read');
    for (const n of ['WRITE(6)', 'WRITE(10)', 'WRITE(12)', 'WRITE(16)', 'WRITE AND VERIFY(10)', 'ORWRITE(16)', 'WRITE ATOMIC(16)']) {
      expect(commandClass(byName(n)), n).toBe('write');
    }
    for (const n of ['COMPARE AND WRITE', 'WRITE SAME(10)', 'WRITE SAME(16)', 'UNMAP', 'EXTENDED COPY(LID1)']) expect(commandClass(byName(n)), n).toBe('vaai');
    for (const n of ['INQUIRY', 'TEST UNIT READY', 'MODE SENSE(10)', 'REPORT LUNS', 'READ CAPACITY(16)', 'REPORT TARGET PORT GROUPS', 'SYNCHRONIZE CACHE(10)']) {
      expect(commandClass(byName(n)), n).toBe('other');
    }
  });

  it('the per-opcode shortcut gives the class of the table entry, for every entry of the table', () => {
    expect(ALL_COMMANDS.length).toBeGreaterThan(50);
    for (const d of ALL_COMMANDS) {
      expect(COMMAND_CLASSES[classOfCdb(cdbOf(d.opcode, d.serviceAction))], d.name).toBe(commandClass(d));
    }
  });

  it('opcodes and service actions the table does not have are other', () => {
    expect(COMMAND_CLASSES[classOfCdb(cdbOf(0xc0))]).toBe('other'); // vendor specific
    // EXTENDED COPY is 83h/00h; 83h/1Fh is not implemented, so it must not count as VAAI.
    expect(COMMAND_CLASSES[classOfCdb(cdbOf(0x83, 0))]).toBe('vaai');
    expect(COMMAND_CLASSES[classOfCdb(cdbOf(0x83, 0x1f))]).toBe('other');
  });
});
