/**
 * Reading an accepted socket into buffers we supply (Node's `onread` option) instead of a fresh
 * 64 KiB buffer per read. At 1 GB/s of writes those per-read buffers were what kept V8's major
 * GC busy (external-memory pressure; a perf profile put ~40% of the target's CPU in marking and
 * sweeping), and every large data segment had to be copied out of them.
 *
 * Node offers `onread` only to sockets it constructs from options, not to the ones a server
 * accepts, so the accepted socket's handle is moved into a new net.Socket. That uses the
 * accepted socket's `_handle` field, not a public API: when it is not there (another Node
 * version), the accepted socket is used as it is, with ordinary 'data' chunks.
 */
import net from 'node:net';

export interface UserBufferReads {
  /** The buffer the next read goes into. */
  buffer: () => Buffer;
  /** `n` bytes were read into `buf` (the last buffer() result). */
  callback: (n: number, buf: Uint8Array) => void;
}

/** Returns the socket to use: a new one reading through `reads`, or `raw` itself (null reads). */
export function adoptSocket(raw: net.Socket, reads: UserBufferReads): { socket: net.Socket; userBuffers: boolean } {
  const holder = raw as unknown as { _handle?: object | null };
  const handle = holder._handle;
  if (!handle || typeof (handle as { readStart?: unknown }).readStart !== 'function') {
    return { socket: raw, userBuffers: false };
  }
  holder._handle = null;
  const socket = new net.Socket({
    handle, readable: true, writable: true,
    onread: { buffer: reads.buffer, callback: (n: number, buf: Uint8Array) => { reads.callback(n, buf); return true; } },
  } as net.SocketConstructorOpts);
  // The accepted socket no longer owns the connection: destroying it only settles the server's
  // connection count (so server.close() still completes); IscsiServer tracks the new socket.
  raw.destroy();
  return { socket, userBuffers: true };
}
