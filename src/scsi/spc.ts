import type { CommandDef } from "./command.ts";
export const SPC_COMMANDS: CommandDef[] = [];
