/**
 * SCSI sense data (SPC-5 §4.4). Pure codec: a SenseReason names *why* a command failed;
 * this module is the one place that turns a reason into fixed (0x70) or descriptor (0x72)
 * format bytes. Handlers never build sense bytes themselves.
 */

export const enum SenseKey {
  NoSense = 0x0,
  RecoveredError = 0x1,
  NotReady = 0x2,
  MediumError = 0x3,
  HardwareError = 0x4,
  IllegalRequest = 0x5,
  UnitAttention = 0x6,
  DataProtect = 0x7,
  BlankCheck = 0x8,
  CopyAborted = 0xa,
  AbortedCommand = 0xb,
  VolumeOverflow = 0xd,
  Miscompare = 0xe,
}

/** One row per reason: [sense key, ASC, ASCQ]. Names follow SPC-5 Annex F (ASC/ASCQ assignments). */
export const SENSE_REASONS = {
  NoSense: [SenseKey.NoSense, 0x00, 0x00],
  // NO SENSE: LOW POWER CONDITION ON, how it was entered (SPC-5 §6.39.2, REQUEST SENSE only).
  LowPowerIdleByCommand: [SenseKey.NoSense, 0x5e, 0x03],
  LowPowerStandbyByCommand: [SenseKey.NoSense, 0x5e, 0x04],
  LowPowerIdleBByCommand: [SenseKey.NoSense, 0x5e, 0x06],
  LowPowerIdleCByCommand: [SenseKey.NoSense, 0x5e, 0x08],
  LowPowerStandbyYByCommand: [SenseKey.NoSense, 0x5e, 0x0a],
  // ILLEGAL REQUEST
  InvalidOpcode: [SenseKey.IllegalRequest, 0x20, 0x00],
  LbaOutOfRange: [SenseKey.IllegalRequest, 0x21, 0x00],
  InvalidFieldInCdb: [SenseKey.IllegalRequest, 0x24, 0x00],
  InvalidFieldInCommandIu: [SenseKey.IllegalRequest, 0x0e, 0x03],
  LuNotSupported: [SenseKey.IllegalRequest, 0x25, 0x00],
  ParameterListLengthError: [SenseKey.IllegalRequest, 0x1a, 0x00],
  InvalidFieldInParameterList: [SenseKey.IllegalRequest, 0x26, 0x00],
  ParameterNotSupported: [SenseKey.IllegalRequest, 0x26, 0x01],
  ParameterValueInvalid: [SenseKey.IllegalRequest, 0x26, 0x02],
  InvalidReleaseOfPersistentReservation: [SenseKey.IllegalRequest, 0x26, 0x04],
  TooManyTargetDescriptors: [SenseKey.IllegalRequest, 0x26, 0x06],
  UnsupportedTargetDescriptorType: [SenseKey.IllegalRequest, 0x26, 0x07],
  TooManySegmentDescriptors: [SenseKey.IllegalRequest, 0x26, 0x08],
  UnsupportedSegmentDescriptorType: [SenseKey.IllegalRequest, 0x26, 0x09],
  OperationInProgress: [SenseKey.IllegalRequest, 0x00, 0x16],
  InsufficientRegistrationResources: [SenseKey.IllegalRequest, 0x55, 0x04],
  SavingParametersNotSupported: [SenseKey.IllegalRequest, 0x39, 0x00],
  MediumRemovalPrevented: [SenseKey.IllegalRequest, 0x53, 0x02],
  InvalidCommandOperationCode: [SenseKey.IllegalRequest, 0x20, 0x00],
  CommandSequenceError: [SenseKey.IllegalRequest, 0x2c, 0x00],
  InvalidMessageError: [SenseKey.IllegalRequest, 0x49, 0x00],
  // NOT READY
  NotReadyCauseNotReportable: [SenseKey.NotReady, 0x04, 0x00],
  NotReadyInitializingCommandRequired: [SenseKey.NotReady, 0x04, 0x02],
  // A replica LU while image access is disabled (src/splitter/copy-target.ts): only an operator
  // can make it ready (enable_image_access), so not BECOMING READY (04/01), and Linux sd sends no
  // START STOP UNIT for this ASCQ (sd_spinup_disk) and fails, not retries, I/O to it.
  NotReadyManualInterventionRequired: [SenseKey.NotReady, 0x04, 0x03],
  NotReadyFormatInProgress: [SenseKey.NotReady, 0x04, 0x04],
  NotReadyAluaTransitioning: [SenseKey.NotReady, 0x04, 0x0a],
  NotReadyAluaStandby: [SenseKey.NotReady, 0x04, 0x0b],
  NotReadyAluaUnavailable: [SenseKey.NotReady, 0x04, 0x0c],
  NotReadyAluaOffline: [SenseKey.NotReady, 0x04, 0x12],
  NotReadySanitizeInProgress: [SenseKey.NotReady, 0x04, 0x1b],
  MediumNotPresent: [SenseKey.NotReady, 0x3a, 0x00],
  MediumNotPresentTrayOpen: [SenseKey.NotReady, 0x3a, 0x02],
  // DATA PROTECT
  WriteProtected: [SenseKey.DataProtect, 0x27, 0x00],
  SpaceAllocationFailedWriteProtect: [SenseKey.DataProtect, 0x27, 0x07],
  // UNIT ATTENTION
  PowerOnResetOccurred: [SenseKey.UnitAttention, 0x29, 0x00],
  PowerOnOccurred: [SenseKey.UnitAttention, 0x29, 0x01],
  BusResetOccurred: [SenseKey.UnitAttention, 0x29, 0x02],
  BusDeviceResetOccurred: [SenseKey.UnitAttention, 0x29, 0x03],
  NexusLossOccurred: [SenseKey.UnitAttention, 0x29, 0x07],
  ParametersChanged: [SenseKey.UnitAttention, 0x2a, 0x00],
  ModeParametersChanged: [SenseKey.UnitAttention, 0x2a, 0x01],
  ReservationsPreempted: [SenseKey.UnitAttention, 0x2a, 0x03],
  ReservationsReleased: [SenseKey.UnitAttention, 0x2a, 0x04],
  RegistrationsPreempted: [SenseKey.UnitAttention, 0x2a, 0x05],
  AsymmetricAccessStateChanged: [SenseKey.UnitAttention, 0x2a, 0x06],
  CapacityDataChanged: [SenseKey.UnitAttention, 0x2a, 0x09],
  ReportedLunsDataChanged: [SenseKey.UnitAttention, 0x3f, 0x0e],
  InquiryDataChanged: [SenseKey.UnitAttention, 0x3f, 0x03],
  CommandsClearedByAnotherInitiator: [SenseKey.UnitAttention, 0x2f, 0x00],
  MediumMayHaveChanged: [SenseKey.UnitAttention, 0x28, 0x00],
  ThinProvisioningSoftThresholdReached: [SenseKey.UnitAttention, 0x38, 0x07],
  // MEDIUM / HARDWARE
  UnrecoveredReadError: [SenseKey.MediumError, 0x11, 0x00],
  WriteError: [SenseKey.MediumError, 0x0c, 0x00],
  InternalTargetFailure: [SenseKey.HardwareError, 0x44, 0x00],
  // ABORTED COMMAND
  CommandAborted: [SenseKey.AbortedCommand, 0x00, 0x00],
  DataPhaseError: [SenseKey.AbortedCommand, 0x4b, 0x00],
  UnexpectedUnsolicitedData: [SenseKey.AbortedCommand, 0x0c, 0x0c],
  NotEnoughUnsolicitedData: [SenseKey.AbortedCommand, 0x0c, 0x0d],
  InitiatorDetectedErrorMessageReceived: [SenseKey.AbortedCommand, 0x48, 0x00],
  ProtocolServiceCrcError: [SenseKey.AbortedCommand, 0x47, 0x05],
  // MISCOMPARE
  MiscompareDuringVerify: [SenseKey.Miscompare, 0x1d, 0x00],
  // COPY ABORTED (EXTENDED COPY, SPC-5 §6.6)
  CopyTargetDeviceNotReachable: [SenseKey.CopyAborted, 0x0d, 0x02],
  CopyAbortedLbaOutOfRange: [SenseKey.CopyAborted, 0x21, 0x00],
  CopyUnreachableTarget: [SenseKey.CopyAborted, 0x08, 0x01],
} as const satisfies Record<string, readonly [SenseKey, number, number]>;

export type SenseReason = keyof typeof SENSE_REASONS;

/** SENSE-KEY SPECIFIC field pointer (SPC-5 §4.4.2.4.2): which byte/bit of the CDB or parameter list was bad. */
export interface FieldPointer {
  /** true: the bad field is in the CDB (C/D=1); false: in the parameter data. */
  inCdb: boolean;
  byte: number;
  /** bit number 0..7 (sets BPV) or undefined. */
  bit?: number;
}

export interface SenseDetail {
  /** INFORMATION field (e.g. first bad LBA, or the miscompare offset for COMPARE AND WRITE). */
  information?: bigint | number;
  fieldPointer?: FieldPointer;
  /**
   * PROGRESS INDICATION (SPC-5 §4.4.2.4.3), 0..65535 = fraction done of 65536: the sense-key
   * specific field of NOT READY sense for an operation in progress (SANITIZE, FORMAT UNIT).
   * Ignored when fieldPointer is set.
   */
  progress?: number;
  /** command-specific information (e.g. EXTENDED COPY). */
  commandSpecific?: number;
  /** Filemark/EOM/ILI bits are not used by block devices; ILI kept for completeness. */
  ili?: boolean;
}

export function reasonTriple(reason: SenseReason): readonly [SenseKey, number, number] {
  return SENSE_REASONS[reason];
}

/** Fixed format sense data, 18 bytes (SPC-5 §4.4.3). */
export function buildFixedSense(reason: SenseReason, d: SenseDetail = {}): Buffer {
  const [key, asc, ascq] = SENSE_REASONS[reason];
  const b = Buffer.alloc(18);
  const info = d.information;
  // VALID bit only when the INFORMATION value fits in the 4-byte field.
  const infoFits = info !== undefined && BigInt(info) <= 0xffffffffn;
  b[0] = (infoFits ? 0x80 : 0) | 0x70;
  b[2] = (d.ili ? 0x20 : 0) | key;
  if (infoFits) b.writeUInt32BE(Number(info), 3);
  b[7] = 10; // additional sense length
  if (d.commandSpecific !== undefined) b.writeUInt32BE(d.commandSpecific >>> 0, 8);
  b[12] = asc;
  b[13] = ascq;
  if (d.fieldPointer) writeFieldPointer(b, 15, d.fieldPointer);
  else if (d.progress !== undefined) writeProgress(b, 15, d.progress);
  return b;
}

/** Descriptor format sense data (SPC-5 §4.4.2): header + information + sense-key-specific descriptors. */
export function buildDescriptorSense(reason: SenseReason, d: SenseDetail = {}): Buffer {
  const [key, asc, ascq] = SENSE_REASONS[reason];
  const hasInfo = d.information !== undefined;
  const hasCsi = d.commandSpecific !== undefined;
  const hasSks = d.fieldPointer !== undefined || d.progress !== undefined;
  const len = 8 + (hasInfo ? 12 : 0) + (hasCsi ? 12 : 0) + (hasSks ? 8 : 0);
  const b = Buffer.alloc(len);
  b[0] = 0x72;
  b[1] = key;
  b[2] = asc;
  b[3] = ascq;
  b[7] = len - 8;
  let o = 8;
  if (hasInfo) {
    // Information descriptor (type 0x00), VALID=1, 8-byte INFORMATION.
    b[o] = 0x00; b[o + 1] = 0x0a; b[o + 2] = 0x80;
    b.writeBigUInt64BE(BigInt(d.information!), o + 4);
    o += 12;
  }
  if (hasCsi) {
    // Command-specific information descriptor (type 0x01).
    b[o] = 0x01; b[o + 1] = 0x0a;
    b.writeBigUInt64BE(BigInt(d.commandSpecific! >>> 0), o + 4);
    o += 12;
  }
  if (hasSks) {
    // Sense key specific descriptor (type 0x02).
    b[o] = 0x02; b[o + 1] = 0x06;
    if (d.fieldPointer) writeFieldPointer(b, o + 4, d.fieldPointer);
    else writeProgress(b, o + 4, d.progress!);
    o += 8;
  }
  return b;
}

function writeFieldPointer(b: Buffer, o: number, fp: FieldPointer): void {
  // SKSV=1, C/D, BPV, BIT POINTER, then a 2-byte FIELD POINTER.
  b[o] = 0x80 | (fp.inCdb ? 0x40 : 0) | (fp.bit !== undefined ? 0x08 | (fp.bit & 7) : 0);
  b.writeUInt16BE(fp.byte, o + 1);
}

function writeProgress(b: Buffer, o: number, progress: number): void {
  // SKSV=1, then the 2-byte PROGRESS INDICATION.
  b[o] = 0x80;
  b.writeUInt16BE(Math.max(0, Math.min(0xffff, Math.floor(progress))), o + 1);
}

export function buildSense(reason: SenseReason, descriptor: boolean, d?: SenseDetail): Buffer {
  return descriptor ? buildDescriptorSense(reason, d) : buildFixedSense(reason, d);
}

// ---------------------------------------------------------------------------------------------
// Decoding (the initiator's side): fixed or descriptor sense back into key, ASC/ASCQ, the reason
// name when the triple is one of ours, INFORMATION and the sense-key specific field.

export interface DecodedSense {
  /** 0x70/0x71 fixed, 0x72/0x73 descriptor (SPC-5 §4.4.1). */
  format: 'fixed' | 'descriptor';
  /** Deferred error (response code 0x71 / 0x73). */
  deferred: boolean;
  key: SenseKey;
  asc: number;
  ascq: number;
  /** The first SENSE_REASONS name with this key/ASC/ASCQ, if there is one. */
  reason?: SenseReason;
  /** INFORMATION, when VALID (fixed) or an information descriptor (descriptor format) says so. */
  information?: bigint;
  commandSpecific?: bigint;
  fieldPointer?: FieldPointer;
  progress?: number;
}

const REASON_BY_TRIPLE = new Map<string, SenseReason>();
for (const [name, [k, asc, ascq]] of Object.entries(SENSE_REASONS) as [SenseReason, readonly [number, number, number]][]) {
  const t = `${k}/${asc}/${ascq}`;
  if (!REASON_BY_TRIPLE.has(t)) REASON_BY_TRIPLE.set(t, name);
}

/** The reason name for a key/ASC/ASCQ triple, if the table has one. */
export function reasonOf(key: number, asc: number, ascq: number): SenseReason | undefined {
  return REASON_BY_TRIPLE.get(`${key}/${asc}/${ascq}`);
}

function decodeSks(b: Buffer, o: number, key: number): { fieldPointer?: FieldPointer; progress?: number } {
  if (o + 3 > b.length || !(b[o] & 0x80)) return {};
  // SPC-5 §4.4.2.4: field pointer for ILLEGAL REQUEST, progress for NOT READY / NO SENSE.
  if (key === SenseKey.IllegalRequest) {
    return { fieldPointer: { inCdb: (b[o] & 0x40) !== 0, byte: b.readUInt16BE(o + 1), ...(b[o] & 0x08 ? { bit: b[o] & 7 } : {}) } };
  }
  if (key === SenseKey.NotReady || key === SenseKey.NoSense) return { progress: b.readUInt16BE(o + 1) };
  return {};
}

/** Decode sense data; null when it is too short or not a sense format this module knows. */
export function decodeSense(b: Buffer): DecodedSense | null {
  if (b.length < 1) return null;
  const code = b[0] & 0x7f;
  if (code === 0x70 || code === 0x71) {
    if (b.length < 14) return null;
    const key = (b[2] & 0x0f) as SenseKey;
    const asc = b[12];
    const ascq = b[13];
    const out: DecodedSense = { format: 'fixed', deferred: code === 0x71, key, asc, ascq, reason: reasonOf(key, asc, ascq) };
    if (b[0] & 0x80) out.information = BigInt(b.readUInt32BE(3));
    const csi = b.readUInt32BE(8);
    if (csi) out.commandSpecific = BigInt(csi);
    if (b.length >= 18) Object.assign(out, decodeSks(b, 15, key));
    return out;
  }
  if (code === 0x72 || code === 0x73) {
    if (b.length < 8) return null;
    const key = (b[1] & 0x0f) as SenseKey;
    const asc = b[2];
    const ascq = b[3];
    const out: DecodedSense = { format: 'descriptor', deferred: code === 0x73, key, asc, ascq, reason: reasonOf(key, asc, ascq) };
    const end = Math.min(b.length, 8 + b[7]);
    for (let o = 8; o + 2 <= end; o += 2 + b[o + 1]) {
      const type = b[o];
      const len = b[o + 1];
      if (o + 2 + len > end) break;
      if (type === 0x00 && len >= 10 && b[o + 2] & 0x80) out.information = b.readBigUInt64BE(o + 4);
      else if (type === 0x01 && len >= 10) out.commandSpecific = b.readBigUInt64BE(o + 4);
      else if (type === 0x02 && len >= 6) Object.assign(out, decodeSks(b, o + 4, key));
    }
    return out;
  }
  return null;
}
