/**
 * SET TARGET PORT GROUPS (MAINTENANCE OUT, service action 0Ah; SPC-5 §6.42): explicit ALUA. A
 * host asks for new asymmetric access states; the ALUA model (alua.ts) applies them, through
 * `transitioning` when a transition time is configured, and the command completes once the
 * transition has (SPC-5 §5.16.2.5). REPORT TARGET PORT GROUPS lives with the other MAINTENANCE IN
 * reports in spc.ts and reads the same model.
 */
import { invalidField, reserved } from './cdb.ts';
import type { CommandDef } from './command.ts';
import { stateFromCode } from './alua.ts';
import type { AccessState } from './alua.ts';
import type { LogicalUnit } from './lu.ts';
import { GOOD, SenseError } from './types.ts';

const MAINTENANCE_OUT = 0xa4;

export interface StpgCmd {
  parameterListLength: number;
}

function explicitAllowed(lu: LogicalUnit): boolean {
  return lu.target.alua.modeOf(lu) !== 'implicit';
}

export const SET_TARGET_PORT_GROUPS: CommandDef<StpgCmd> = {
  opcode: MAINTENANCE_OUT, serviceAction: 0x0a, name: 'SET TARGET PORT GROUPS', cdbLength: 12,
  usage: [MAINTENANCE_OUT, 0x0a, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
  dataDirection: 'out',
  // SPC-5 §5.14.3 table 69: SET TARGET PORT GROUPS conflicts with every persistent reservation type
  // held by another I_T nexus.
  reservation: 'conflict',
  // Accepted in standby and unavailable (SPC-5 §5.16.2.4.4-5), not while transitioning or offline.
  alua: 'unavailable-ok',
  ua: 'report',
  splitter: 'none',
  timeout: { nominal: 1, recommended: 60 },
  supported: explicitAllowed,
  decode(cdb, lu) {
    // Implicit-only LUs do not implement the command (TPGS 01b, SPC-5 §6.7.2).
    if (!explicitAllowed(lu)) throw new SenseError('InvalidOpcode');
    reserved(cdb, 1, 0xe0);
    for (const b of [2, 3, 4, 5, 10]) reserved(cdb, b, 0xff);
    if (cdb[11] & 0x04) throw invalidField(11, 2);
    return { parameterListLength: cdb.readUInt32BE(6) };
  },
  execute({ lu, req, nexus }, cmd) {
    if (cmd.parameterListLength === 0) return GOOD;
    const data = req.dataOut;
    // A 4-byte header then 4-byte descriptors (SPC-5 §6.42 table 202).
    if (cmd.parameterListLength < 4 || (cmd.parameterListLength - 4) % 4 !== 0 || !data || data.length < cmd.parameterListLength) {
      throw new SenseError('ParameterListLengthError');
    }
    const descriptors: { tpg: number; state: AccessState; offset: number }[] = [];
    for (let o = 4; o < cmd.parameterListLength; o += 4) {
      const state = stateFromCode(data[o] & 0x0f);
      if (!state) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: o, bit: 3 } });
      descriptors.push({ tpg: data.readUInt16BE(o + 2), state, offset: o });
    }
    return lu.target.alua.setFromHost(nexus, descriptors).then(() => GOOD);
  },
};

export const ALUA_COMMANDS: CommandDef[] = [SET_TARGET_PORT_GROUPS];
