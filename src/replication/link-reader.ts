/**
 * Reading a replication link socket into a buffer it reuses (Node's `onread`), instead of a new
 * 64 KiB buffer for every read. At QD32 those per-read buffers were what kept the secondary's
 * major GC busy: in a perf profile of it (tools/bench/rcopy.ts --qd32-only) V8's marking and
 * sweeping took about a fifth of its CPU, the external-memory pressure of one ArrayBuffer per read.
 * The iSCSI side does the same (src/iscsi/socket-read.ts, whose adoptSocket this uses for accepted
 * sockets).
 *
 * A message decoded from a read may be a view of the read buffer (a write's data: the framer makes
 * no copy, link.ts). Bytes are read over again only when nothing kept such a view past the
 * callback that delivered them: the consumer sets `retained` when it keeps one (a write whose
 * apply is not done within the callback, a frame queued for the other array, a COMPARE AND WRITE
 * under a range lock), and the next read then goes after them, into the rest of the buffer; when
 * less than MIN_READ_BYTES is left, into a new buffer, the old one staying with whoever holds it.
 * So a link whose reads are all kept (forwarded writes at the primary, a file store's applies)
 * takes a new 256 KiB buffer per ~192 KiB read, not one per read.
 */
import net from 'node:net';
import { adoptSocket } from '../iscsi/socket-read.ts';

/** One read's worth: a 4 KiB write frame is 4,140 bytes, so a read takes up to ~60 of them. */
export const LINK_READ_BYTES = 256 * 1024;
/** Below this much room a read goes to a new buffer (Node's own reads are 64 KiB). */
export const MIN_READ_BYTES = 64 * 1024;

export class LinkReader {
  private buf = Buffer.allocUnsafeSlow(LINK_READ_BYTES);
  /** Where the last read went in `buf`, and how many bytes it brought. */
  private at = 0;
  private lastRead = 0;
  /** Everything before this offset of `buf` is held by views: reads go after it. */
  private floor = 0;
  /** Set by the consumer while it handles a chunk: it keeps a view of it, so those bytes are not read into again. */
  retained = false;
  /** Who gets the chunks now (the accept path hands the socket to its group after the hello). */
  onChunk: (chunk: Buffer) => void = () => {};
  /** New read buffers taken because views filled the last one (for tests). */
  renewed = 0;
  /** The socket reads into our buffers (false: Node's own chunks, on a Node without `_handle`). */
  userBuffers = true;

  /** For net.connect / adoptSocket: the buffer the next read goes into, and the read. */
  readonly onread = {
    buffer: (): Buffer => {
      if (this.retained) { this.floor = this.at + this.lastRead; this.retained = false; }
      if (LINK_READ_BYTES - this.floor < MIN_READ_BYTES) { this.buf = Buffer.allocUnsafeSlow(LINK_READ_BYTES); this.floor = 0; this.renewed++; }
      this.at = this.floor;
      return this.floor === 0 ? this.buf : this.buf.subarray(this.floor);
    },
    callback: (n: number, buf: Uint8Array): boolean => {
      this.lastRead = n;
      this.onChunk((buf as Buffer).subarray(0, n));
      return true;
    },
  };

  /** Node's chunks are the reader's own to keep (fallback path): deliver them as they are. */
  private readonly deliver = (chunk: Buffer): void => this.onChunk(chunk);

  /** Dial `host:port` reading through this reader. */
  connect(port: number, host: string): net.Socket {
    return net.connect({ port, host, onread: this.onread } as net.NetConnectOpts);
  }

  /**
   * An accepted socket (from a server made with `pauseOnConnect`): moved to one reading through
   * this reader, or, where that cannot be done, read as 'data' chunks.
   */
  adopt(raw: net.Socket): net.Socket {
    const { socket, userBuffers } = adoptSocket(raw, this.onread);
    this.userBuffers = userBuffers;
    if (!userBuffers) { socket.on('data', this.deliver); socket.resume(); }
    return socket;
  }
}
