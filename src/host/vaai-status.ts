/**
 * What ESXi knows about a device's VAAI primitives, per device, as `esxcli storage core device
 * vaai status get` prints it: ATS, Clone, Zero and Delete, each supported / unsupported / unknown.
 *
 * ESXi learns by trying: "When a host boots, the support status is unknown. As a host attempts
 * hardware-accelerated operations, it determines whether the storage device supports hardware
 * acceleration" (API enum ScsiLunVStorageSupportStatus, reference S4); a block device becomes
 * Supported after an offload completes and Not Supported when one fails (S3). That is `observe`.
 *
 * The device's own description (INQUIRY 3PC, Block Limits VPD MAXIMUM COMPARE AND WRITE LENGTH,
 * READ CAPACITY(16) LBPME, Logical Block Provisioning VPD LBPU) is read and shown beside each
 * status as `advertised`, but it does not set the status and does not stop the host from trying:
 * no source found says ESXi reads these fields to decide (reference §1.6), and the story this
 * project tells depends on a host that tries (a splitter in front of an XCOPY-capable array passes
 * its 3PC=1 through and then ignores the command).
 */
import type { ScsiDevice } from '../initiator/index.ts';

export type Primitive = 'ATS' | 'Clone' | 'Zero' | 'Delete';
export const PRIMITIVES: readonly Primitive[] = ['ATS', 'Clone', 'Zero', 'Delete'];
export type SupportStatus = 'supported' | 'unsupported' | 'unknown';

/** Where a status came from: a primitive's outcome in this run, or the device's own description. */
export type StatusSource = 'observed' | 'none';

export interface PrimitiveStatus {
  status: SupportStatus;
  source: StatusSource;
  /** Why it is unsupported: the answer that refused it. */
  why?: string;
  /** What the device says of itself for this primitive (INQUIRY/VPD), for the reader. */
  advertised?: string;
}

export interface DeviceVaaiStatus {
  /** naa.HEX as ESXi names devices, or the URL when the device reports no NAA designator. */
  device: string;
  ATS: PrimitiveStatus;
  Clone: PrimitiveStatus;
  Zero: PrimitiveStatus;
  Delete: PrimitiveStatus;
}

/** What the device declares (INQUIRY and VPD), read once per device. */
export interface Advertised {
  threePc: boolean | null;
  maxCompareAndWriteLength: number | null;
  maxWriteSameLength: bigint | null;
  maxUnmapLbaCount: number | null;
  lbpu: boolean | null;
  lbpme: boolean | null;
}

/** A device's name as ESXi prints it: naa.<designator hex>. */
export async function deviceName(d: ScsiDevice): Promise<string> {
  try {
    return `naa.${(await d.naa()).toString('hex')}`;
  } catch {
    return d.url ? `iscsi://${d.url.host}:${d.url.port}/${d.url.target}/${d.lun}` : `lun ${d.lun}`;
  }
}

export async function readAdvertised(d: ScsiDevice): Promise<Advertised> {
  const inq = await d.inquiry();
  const bl = await d.blockLimits();
  const lbp = await d.logicalBlockProvisioning();
  const cap = await d.readCapacity16();
  return {
    threePc: inq.kind === 'good' ? inq.value.threePc : null,
    maxCompareAndWriteLength: bl.kind === 'good' ? bl.value.maxCompareAndWriteLength : null,
    maxWriteSameLength: bl.kind === 'good' ? bl.value.maxWriteSameLength : null,
    maxUnmapLbaCount: bl.kind === 'good' ? bl.value.maxUnmapLbaCount : null,
    lbpu: lbp.kind === 'good' ? lbp.value.lbpu : null,
    lbpme: cap.kind === 'good' ? cap.value.lbpme : null,
  };
}

/** What the device's INQUIRY/VPD say about each primitive, one phrase each (null when not reported). */
export function advertisement(a: Advertised): Record<Primitive, string | null> {
  return {
    ATS: a.maxCompareAndWriteLength === null ? null : `MAXIMUM COMPARE AND WRITE LENGTH ${a.maxCompareAndWriteLength}`,
    Clone: a.threePc === null ? null : `3PC ${a.threePc ? 1 : 0}`,
    // MAXIMUM WRITE SAME LENGTH 0 means "no limit reported" (SBC-4 §6.6.4), not "no WRITE SAME".
    Zero: a.maxWriteSameLength === null ? null : `MAXIMUM WRITE SAME LENGTH ${a.maxWriteSameLength}`,
    Delete: a.lbpme === null && a.lbpu === null ? null : `LBPME ${a.lbpme ? 1 : 0}, LBPU ${a.lbpu ? 1 : 0}`,
  };
}

function firstLook(a: Advertised): Record<Primitive, PrimitiveStatus> {
  const ad = advertisement(a);
  const row = {} as Record<Primitive, PrimitiveStatus>;
  for (const p of PRIMITIVES) row[p] = { status: 'unknown', source: 'none', ...(ad[p] ? { advertised: ad[p]! } : {}) };
  return row;
}

/** The host's per-device table. Observed outcomes replace the first look and stay for the host's lifetime. */
export class VaaiStatusTable {
  private readonly rows = new Map<string, Record<Primitive, PrimitiveStatus>>();
  private readonly advertised = new Map<string, Advertised>();

  async look(d: ScsiDevice): Promise<string> {
    const name = await deviceName(d);
    if (!this.rows.has(name)) {
      const a = await readAdvertised(d);
      this.advertised.set(name, a);
      this.rows.set(name, firstLook(a));
    }
    return name;
  }

  advertisedOf(name: string): Advertised | undefined {
    return this.advertised.get(name);
  }

  get(name: string, p: Primitive): PrimitiveStatus {
    return this.rows.get(name)?.[p] ?? { status: 'unknown', source: 'none' };
  }

  observe(name: string, p: Primitive, status: 'supported' | 'unsupported', why?: string): void {
    const row = this.rows.get(name) ?? { ATS: unknown(), Clone: unknown(), Zero: unknown(), Delete: unknown() };
    row[p] = { status, source: 'observed', ...(why ? { why } : {}), ...(row[p].advertised ? { advertised: row[p].advertised } : {}) };
    this.rows.set(name, row);
  }

  /** What a host reboot does (S4): every device back to its first look. */
  reset(): void {
    for (const [name, a] of this.advertised) this.rows.set(name, firstLook(a));
  }

  status(name: string): DeviceVaaiStatus {
    return { device: name, ATS: this.get(name, 'ATS'), Clone: this.get(name, 'Clone'), Zero: this.get(name, 'Zero'), Delete: this.get(name, 'Delete') };
  }
}

function unknown(): PrimitiveStatus {
  return { status: 'unknown', source: 'none' };
}

/** The esxcli layout (reference S27): the device, then one line per primitive. An empty plug-in name is what a pure T10 device shows. */
export function formatVaaiStatus(s: DeviceVaaiStatus): string {
  const lines = [s.device, '   VAAI Plugin Name: '];
  for (const p of PRIMITIVES) {
    const notes = [s[p].why && `refused: ${s[p].why}`, s[p].advertised && `device says ${s[p].advertised}`].filter(Boolean);
    lines.push(`   ${p} Status: ${s[p].status}${notes.length ? `   (${notes.join('; ')})` : ''}`);
  }
  return lines.join('\n');
}
