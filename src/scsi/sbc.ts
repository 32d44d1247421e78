import type { CommandDef } from "./command.ts";
export const SBC_COMMANDS: CommandDef[] = [];
