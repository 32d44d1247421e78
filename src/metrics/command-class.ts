/**
 * The latency class of a SCSI command (read, write, vaai, other), derived from its command-table
 * entry and from nothing else: a new command lands in the right class by declaring its splitter
 * class, data direction, reservation class and ALUA class, as every entry already must.
 *
 *   vaai   a splitter class that names a VAAI primitive ('ats', 'xcopy', 'writesame', 'unmap'):
 *          COMPARE AND WRITE, EXTENDED COPY, WRITE SAME, UNMAP
 *   write  splitter 'write': every other command that writes host data (WRITE, WRITE AND VERIFY,
 *          ORWRITE, WRITE ATOMIC, FORMAT UNIT, SANITIZE)
 *   read   a media read that returns data: Data-In, reservation class 'read', ALUA class 'media'
 *          (READ, GET LBA STATUS, READ DEFECT DATA; MODE SENSE is 'read' for reservations but
 *          answers in standby, so it is not a media access)
 *   other  everything else, and opcodes the table does not have
 */
import type { CommandDef } from '../scsi/command.ts';
import { SERVICE_ACTION_OPCODES } from '../scsi/command.ts';
import { ALL_COMMANDS, lookupCommand } from '../scsi/table.ts';

export const COMMAND_CLASSES = ['read', 'write', 'vaai', 'other'] as const;
export type CommandClass = (typeof COMMAND_CLASSES)[number];

/** Index into COMMAND_CLASSES: what the I/O path carries (a small integer, no string). */
export const enum ClassIndex { Read = 0, Write = 1, Vaai = 2, Other = 3 }

export function commandClass(def: CommandDef): CommandClass {
  if (def.splitter === 'write') return 'write';
  if (def.splitter !== 'none') return 'vaai';
  if (def.dataDirection === 'in' && def.reservation === 'read' && def.alua === 'media') return 'read';
  return 'other';
}

function indexOf(def: CommandDef | undefined): ClassIndex {
  return def ? (COMMAND_CLASSES.indexOf(commandClass(def)) as ClassIndex) : ClassIndex.Other;
}

/** Opcodes whose class depends on the service action: classified through the table lookup. */
const BY_SERVICE_ACTION = 0xff;

/**
 * The class of every opcode that has no service action, computed once from the table, so that
 * classifying a READ or WRITE on the I/O path is one typed-array load.
 */
const BY_OPCODE: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(ClassIndex.Other);
  for (const def of ALL_COMMANDS) if (def.serviceAction === undefined) t[def.opcode] = indexOf(def);
  for (const op of SERVICE_ACTION_OPCODES) t[op] = BY_SERVICE_ACTION;
  return t;
})();

/** The class of the command in `cdb` (the same entry the LU pipeline will look up). */
export function classOfCdb(cdb: Buffer): ClassIndex {
  const c = BY_OPCODE[cdb[0]];
  return c === BY_SERVICE_ACTION ? indexOf(lookupCommand(cdb)) : (c as ClassIndex);
}
