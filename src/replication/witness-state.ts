/**
 * The quorum witness's state file (`arraysim witness --state FILE`): each group's owner and epoch,
 * the two facts a restarted witness must not forget. Without them a witness that restarts names,
 * after its start-up grace, the first array that reports the primary role, and that may be an old
 * primary which came back while the array it was failed over to is down: it would write alone
 * without the writes the other acknowledged (README "Peer replication", quorum witness).
 *
 * The shell (witness-server.ts) writes the file whenever a heartbeat changed an owner or an epoch,
 * and sends that heartbeat's verdict (and any verdict after it) only once the file is on disk: a
 * grant the witness could forget is never announced. The file is JSON, replaced whole (temporary
 * file, fsync, rename, fsync of the folder), so it is either the old state or the new one. A file
 * that cannot be read or parsed stops the witness from starting: guessing could hand a group to
 * the wrong array; the operator removes the file (or the group from it) knowingly.
 */
import { promises as fsp } from 'node:fs';
import { writeDurably } from '../store/durable.ts';

export interface WitnessRecord { group: string; owner: string; epoch: number }

const VERSION = 1;

export function encodeWitnessState(witness: string, records: readonly WitnessRecord[]): string {
  return JSON.stringify({ version: VERSION, witness, groups: records.map((r) => ({ group: r.group, owner: r.owner, epoch: r.epoch })) }, null, 2) + '\n';
}

/** Parse a state file's text; throws naming what is wrong. */
export function decodeWitnessState(text: string): WitnessRecord[] {
  let j: unknown;
  try { j = JSON.parse(text); } catch (e) { throw new Error(`not JSON (${e instanceof Error ? e.message : String(e)})`); }
  const o = j as { version?: unknown; groups?: unknown };
  if (!o || typeof o !== 'object' || o.version !== VERSION) throw new Error(`version ${JSON.stringify(o?.version)}, expected ${VERSION}`);
  if (!Array.isArray(o.groups)) throw new Error('groups is not a list');
  const seen = new Set<string>();
  return o.groups.map((g: unknown, i: number) => {
    const r = g as Partial<WitnessRecord>;
    if (!r || typeof r.group !== 'string' || !r.group) throw new Error(`groups[${i}].group is not a name`);
    if (typeof r.owner !== 'string') throw new Error(`groups[${i}].owner is not a string`);
    if (typeof r.epoch !== 'number' || !Number.isInteger(r.epoch) || r.epoch < 0 || r.epoch > 0xffffffff) throw new Error(`groups[${i}].epoch is not an epoch (0..2^32-1)`);
    if (seen.has(r.group)) throw new Error(`group ${r.group} is listed twice`);
    seen.add(r.group);
    return { group: r.group, owner: r.owner, epoch: r.epoch };
  });
}

/** The records in `file`, or null if there is no such file (a new witness). Throws on anything else. */
export async function readWitnessState(file: string): Promise<WitnessRecord[] | null> {
  let text: string;
  try { text = await fsp.readFile(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`witness state ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try { return decodeWitnessState(text); } catch (e) {
    throw new Error(`witness state ${file}: ${e instanceof Error ? e.message : String(e)}; the witness does not start on a state it cannot trust (remove the file to start without one)`);
  }
}

/**
 * Writes of the state file, one at a time; a write asked during one runs after it with the state
 * of that moment (`state()` is called when the write begins). `written()` resolves once everything
 * asked so far is on disk.
 */
export class WitnessStateFile {
  private running: Promise<void> | null = null;
  private again = false;
  writes = 0;

  constructor(readonly file: string, private readonly state: () => string) {}

  /** Ask for a write of the current state; resolves when it (or a later one) is on disk. */
  save(): Promise<void> {
    if (this.running) { this.again = true; return this.running; }
    const p = (async () => {
      do {
        this.again = false;
        await writeDurably(this.file, this.state());
        this.writes++;
      } while (this.again);
    })();
    this.running = p.finally(() => { this.running = null; });
    return this.running;
  }

  /** Resolves when no write is pending (rejects if the pending one fails). */
  written(): Promise<void> { return this.running ?? Promise.resolve(); }
}
