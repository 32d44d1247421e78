/**
 * What one data-mover run did: what went to the array as an offload, what fell back to the
 * software data mover and why (the sense by name), the I/O counts and the time. Printed as text
 * for people and as JSON (`--json`) for scripts and the lab.
 */
import type { DeviceVaaiStatus, Primitive } from './vaai-status.ts';
import { formatVaaiStatus } from './vaai-status.ts';

export type Verb = 'clone' | 'zero' | 'unmap' | 'lock';

/** Why a primitive was not (or no longer) used. */
export type FallbackCause =
  | 'setting'       // the host-wide advanced setting is 0
  | 'unsupported'   // the device's status was already unsupported in this host's lifetime
  | 'refused';      // the array answered ILLEGAL REQUEST or COPY ABORTED in this run

export interface Fallback {
  primitive: Primitive;
  cause: FallbackCause;
  /** The refusing answer, e.g. "CHECK CONDITION ILLEGAL REQUEST 05/20/00 (InvalidOpcode)", or the setting. */
  why: string;
  /** First block handed to the fallback path (the source LBA for a clone). */
  fromLba: string;
  /** Blocks the fallback path took over. */
  blocks: number;
  /** What took over: READ+WRITE, WRITE of zeros, SCSI reservations, nothing (UNMAP is advisory). */
  fallback: string;
}

export interface IoCounts {
  extendedCopy: number;
  writeSame: number;
  unmap: number;
  compareAndWrite: number;
  read: number;
  write: number;
  reserve: number;
  release: number;
  /** Commands sent again after BUSY, TASK SET FULL or UNIT ATTENTION. */
  retried: number;
}

export type Outcome =
  | 'done'           // the range is copied / zeroed / unmapped, or the lock verb did what it was asked
  | 'failed'         // an answer neither GOOD nor a fallback trigger: nothing was pretended
  | 'held'           // lock: held by another host
  | 'outage'         // lock: heartbeat lost (false miscompare or stolen): "Lost access to volume"
  | 'mount-failed';  // lock: ATS-only volume without ATS

export interface RunReport {
  verb: Verb;
  outcome: Outcome;
  /** One line saying what happened, in ESXi's words where it has some. */
  message: string;
  devices: string[];
  /** Settings that differ from ESXi's defaults. */
  settings: string[];
  lba: string;
  blocks: number;
  blockSize: number;
  /** Blocks moved / zeroed / unmapped by the array itself. */
  offloadedBlocks: number;
  /** Blocks the host moved or zeroed itself. */
  softwareBlocks: number;
  fallbacks: Fallback[];
  io: IoCounts;
  elapsedMs: number;
  vaai: DeviceVaaiStatus[];
  /** Lock verb: the lock's course (acquired, heartbeats, released, the holder seen). */
  lock?: { mode: 'ats' | 'scsi-reservation'; owner?: string; heartbeats: number; holder?: string };
}

export function zeroIo(): IoCounts {
  return { extendedCopy: 0, writeSame: 0, unmap: 0, compareAndWrite: 0, read: 0, write: 0, reserve: 0, release: 0, retried: 0 };
}

export function formatReport(r: RunReport): string {
  const out: string[] = [];
  const sec = (r.elapsedMs / 1000).toFixed(3);
  out.push(`host ${r.verb}: ${r.outcome} - ${r.message}`);
  if (r.settings.length) out.push(`  advanced settings: ${r.settings.join(', ')}`);
  if (r.verb !== 'lock') {
    out.push(`  range: LBA ${r.lba} + ${r.blocks} blocks of ${r.blockSize} bytes`);
    out.push(`  offloaded: ${r.offloadedBlocks} blocks; by the host: ${r.softwareBlocks} blocks`);
  }
  if (r.lock) out.push(`  lock: ${r.lock.mode}${r.lock.owner ? `, owner ${r.lock.owner}` : ''}, ${r.lock.heartbeats} heartbeats${r.lock.holder ? `, held by ${r.lock.holder}` : ''}`);
  for (const f of r.fallbacks) {
    out.push(`  fell back: ${f.primitive} (${f.cause}: ${f.why}) from LBA ${f.fromLba}, ${f.blocks} blocks by ${f.fallback}`);
  }
  if (!r.fallbacks.length) out.push('  fell back: nothing');
  const io = Object.entries(r.io).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
  out.push(`  I/O: ${io || 'none'}; time ${sec} s`);
  for (const v of r.vaai) out.push(formatVaaiStatus(v).replace(/^/gm, '  '));
  return out.join('\n');
}

/** JSON with bigints as strings (LBAs are carried as strings already; this is a guard). */
export function reportJson(r: unknown): string {
  return JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
}
