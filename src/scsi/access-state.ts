/**
 * The asymmetric access states and their SPC-5 codes (§6.37, table 166), in a module that imports
 * nothing, so that the event types (src/events.ts) and the browser console can name them without
 * bringing the ALUA engine (src/scsi/alua.ts) along.
 */
export const ACCESS_STATES = {
  'active/optimized': 0x0,
  'active/non-optimized': 0x1,
  standby: 0x2,
  unavailable: 0x3,
  offline: 0xe,
  transitioning: 0xf,
} as const;
export type AccessState = keyof typeof ACCESS_STATES;
