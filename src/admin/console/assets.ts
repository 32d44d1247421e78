/**
 * The console's built files (dist/console/, written by ./build.mjs at package time), held in
 * memory once read, and the choice of which encoding of one to send.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Encoding = 'br' | 'gzip' | 'identity';

export interface ConsoleFile {
  name: string;
  type: string;
  etag: string;
  /** Named by its content hash: cached for a year. index.html is not (it names the others). */
  immutable: boolean;
  bodies: Record<Encoding, Buffer>;
}

interface Manifest {
  built: string;
  files: { name: string; type: string; etag: string; immutable: boolean }[];
}

/**
 * dist/console of the package this module belongs to: the first folder upwards with a
 * package.json (src/admin/console/ from a checkout run through tsx, dist/src/admin/console/ from
 * the built package both have the package root above them).
 */
export function defaultConsoleDir(from = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(from, '../../../dist/console');
    dir = up;
  }
  return path.join(dir, 'dist', 'console');
}

/** Every file of a built console by name, or null when there is no build in `dir`. */
export function loadConsole(dir: string): Map<string, ConsoleFile> | null {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return null;
  }
  const files = new Map<string, ConsoleFile>();
  for (const f of manifest.files) {
    const p = path.join(dir, f.name);
    files.set(f.name, {
      ...f,
      bodies: { identity: readFileSync(p), gzip: readFileSync(`${p}.gz`), br: readFileSync(`${p}.br`) },
    });
  }
  return files;
}

/**
 * The best encoding the client accepts (RFC 9110 §12.5.3 Accept-Encoding, with q-values):
 * brotli, then gzip, else the file as it is. `*` accepts any; q=0 refuses one.
 */
export function chooseEncoding(header: string | undefined): Encoding {
  if (!header) return 'identity';
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const qp = params.map((x) => x.trim()).find((x) => x.startsWith('q='));
    const v = qp ? Number(qp.slice(2)) : 1;
    q.set(name, Number.isFinite(v) ? v : 0);
  }
  const accepts = (e: string) => (q.get(e) ?? q.get('*') ?? 0) > 0;
  if (accepts('br')) return 'br';
  if (accepts('gzip')) return 'gzip';
  return 'identity';
}
