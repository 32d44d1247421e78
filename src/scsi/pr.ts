/**
 * Reservations: SPC-2 RESERVE/RELEASE and SPC-5 persistent reservations (§5.14).
 * PLACEHOLDER — being replaced by the full implementation in this session.
 */
import type { CommandDef } from './command.ts';
import type { LogicalUnit } from './lu.ts';
import type { Nexus, ScsiRequest } from './types.ts';

export class Reservations {
  constructor(readonly lu: LogicalUnit) {}
  gate(_def: CommandDef, _req: ScsiRequest, _cmd: unknown): void {}
  onLogicalUnitReset(): void {}
  onNexusLoss(_nexus: Nexus): void {}
}

export const PR_COMMANDS: CommandDef[] = [];
