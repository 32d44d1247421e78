/**
 * THE command table (STYLE.md habit 2): every implemented command, gathered from the module
 * that owns it. Keyed by opcode, or by opcode<<16|service action for multiplexed opcodes.
 */
import type { CommandDef } from './command.ts';
import { SERVICE_ACTION_OPCODES, serviceActionOf, tableKey } from './command.ts';
import { SPC_COMMANDS } from './spc.ts';
import { SBC_COMMANDS } from './sbc.ts';
import { PR_COMMANDS } from './pr.ts';
import { XCOPY_COMMANDS } from './xcopy.ts';
import { ALUA_COMMANDS } from './alua-commands.ts';
import { VENDOR_COMMANDS } from './vendor-digest.ts';
import { REPLICA_COMMANDS } from './replica-claim.ts';

export const ALL_COMMANDS: readonly CommandDef[] = [...SPC_COMMANDS, ...SBC_COMMANDS, ...PR_COMMANDS, ...ALUA_COMMANDS, ...XCOPY_COMMANDS, ...VENDOR_COMMANDS, ...REPLICA_COMMANDS];

export const COMMAND_TABLE: ReadonlyMap<number, CommandDef> = (() => {
  const m = new Map<number, CommandDef>();
  for (const d of ALL_COMMANDS) {
    const k = tableKey(d.opcode, d.serviceAction);
    if (m.has(k)) throw new Error(`command table: duplicate entry for ${d.name}`);
    m.set(k, d);
  }
  return m;
})();

/** The table entry for a CDB: by opcode and service action where the opcode multiplexes, else by opcode. */
export function lookupCommand(cdb: Buffer): CommandDef | undefined {
  const op = cdb[0];
  if (SERVICE_ACTION_OPCODES.has(op)) {
    const def = COMMAND_TABLE.get(tableKey(op, serviceActionOf(cdb)));
    if (def) return def;
  }
  return COMMAND_TABLE.get(op);
}
