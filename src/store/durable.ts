/**
 * Small files replaced durably: a journal's index, a group's metadata, the witness's state. What a
 * crash (even of the machine) leaves is the old file or the new one, never a mix.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** fsync a folder: a file created, renamed or deleted in it stays so. */
export async function syncDir(dir: string): Promise<void> {
  const d = await fsp.open(dir, 'r');
  try { await d.sync(); } finally { await d.close(); }
}

/** Replace `file` atomically and durably: temp file, fdatasync, rename, fsync of the folder. */
export async function writeDurably(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  try { await fh.writeFile(data); await fh.datasync(); } finally { await fh.close(); }
  await fsp.rename(tmp, file);
  await syncDir(path.dirname(file));
}
