/** An array built from YAML with its admin API on loopback, and a server-sent events reader, for the admin API tests. */
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { AdminApi } from '../../src/admin/api.ts';
import type { AdminOptions } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFile } from '../../src/config.ts';

export interface AdminRig {
  array: StorageArray;
  api: AdminApi;
  base: string;
  port: number;
  portals: number[];
  /** Every log line the array and the API wrote (level trace), as text. */
  logText(): string;
  close(): Promise<void>;
}

export async function startAdmin(yaml: string, opts: AdminOptions = {}): Promise<AdminRig> {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-admin-'));
  writeFileSync(path.join(dir, 'array.yaml'), yaml);
  const config = configFromFile(path.join(dir, 'array.yaml'));
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const log = pino({ level: 'trace' }, sink);
  const array = await StorageArray.create(config, log);
  await array.start();
  const api = new AdminApi(array, log, opts);
  const port = await api.listen('127.0.0.1', 0);
  return {
    array, api, port, base: `http://127.0.0.1:${port}`, portals: config.portals.map((p) => p.port),
    logText: () => lines.join(''),
    close: async () => { await api.close(); await array.stop(); },
  };
}

export interface SseMessage {
  event: string;
  id?: string;
  data: any;
}

/** A GET /v1/events subscriber over real HTTP: parses the stream into messages and comments. */
export class SseClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  private req: http.ClientRequest | null = null;
  private buf = '';
  private wake: (() => void) | null = null;

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const c = new SseClient();
    await new Promise<void>((resolve, reject) => {
      c.req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        c.status = res.statusCode ?? 0;
        c.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (d: string) => { c.buf += d; c.parse(); });
        res.on('end', () => { c.ended = true; c.poke(); });
        res.on('error', () => { c.ended = true; c.poke(); });
        resolve();
      });
      c.req.on('error', reject);
    });
    return c;
  }

  private parse(): void {
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const m: Partial<SseMessage> & { data?: string } = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) { this.comments.push(line.slice(1).trim()); continue; }
        const k = line.indexOf(':');
        const field = line.slice(0, k);
        const value = line.slice(k + 1).replace(/^ /, '');
        if (field === 'event') m.event = value;
        else if (field === 'id') m.id = value;
        else if (field === 'data') m.data = (m.data === undefined ? '' : m.data + '\n') + value;
      }
      if (m.data !== undefined) this.messages.push({ event: m.event ?? 'message', id: m.id, data: JSON.parse(m.data) });
    }
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Wait until `ok()` holds (checked on every chunk), or fail after `ms`. */
  async until(ok: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SSE: timed out waiting for ${what}; have ${JSON.stringify(this.messages.map((m) => m.event))}`);
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, Math.min(left, 100)); });
    }
  }

  /** The messages of these event types, in arrival order. */
  of(...types: string[]): SseMessage[] {
    return this.messages.filter((m) => types.includes(m.event));
  }

  close(): void {
    this.req?.destroy();
  }
}
