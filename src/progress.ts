/**
 * Progress of long work on a terminal: one line, redrawn in place, with a bar, the rate and the
 * time left, for the CLI verbs and benches that take more than a second. Nothing at all when the
 * stream is not a TTY (piped, redirected, CI): those print only their result.
 *
 *   const p = Progress.start({ label: 'verify cg1', total: bytes, unit: 'bytes' });
 *   p.update(done);  …  p.done();
 *
 * Without a total it shows what it can honestly show: a spinner, the count so far and the time.
 * The line appears only once the work has taken `delayMs` (default 1 s), so quick runs print
 * nothing extra; other lines written meanwhile go through `note()`, which clears the bar first.
 */

export type ProgressUnit = 'bytes' | 'items';

export interface ProgressOptions {
  label: string;
  /** Known amount of work (bytes or items); omitted: unknown. */
  total?: number;
  unit?: ProgressUnit;
  /** Plural noun for items ("runs"); default "items". */
  noun?: string;
  /** Where to draw; default process.stderr (stdout stays the result's). */
  stream?: ProgressStream;
  /** Nothing is drawn before this much time has passed (ms); default 1000. */
  delayMs?: number;
  /** Redraw at most this often (ms); default 100. */
  intervalMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** What Progress needs of a stream: process.stderr, or a stand-in in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): boolean;
}

const SPINNER = ['|', '/', '-', '\\'];
const CLEAR = '\r\x1b[2K';

export interface ProgressState {
  label: string;
  done: number;
  total?: number;
  unit: ProgressUnit;
  noun: string;
  elapsedMs: number;
  frame: number;
}

function amount(n: number, unit: ProgressUnit, noun: string): string {
  if (unit === 'items') return `${Math.round(n)} ${noun}`;
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? Math.round(v) : v.toFixed(1)} ${u[i]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One progress line, at most `columns` wide: label, bar, percent, done/total, rate, ETA. */
export function renderProgress(st: ProgressState, columns = 80): string {
  const secs = st.elapsedMs / 1000;
  const rate = secs > 0 ? st.done / secs : 0;
  const rateText = st.unit === 'bytes' ? `${amount(rate, 'bytes', st.noun)}/s` : `${rate.toFixed(rate < 10 ? 1 : 0)} ${st.noun}/s`;
  let tail: string;
  let frac: number | null = null;
  if (st.total !== undefined && st.total > 0) {
    frac = Math.min(1, st.done / st.total);
    // ETA from the average rate so far: the one figure that does not jump with each sample.
    const eta = rate > 0 ? formatDuration(((st.total - st.done) / rate) * 1000) : '?';
    tail = ` ${String(Math.floor(frac * 100)).padStart(3)}% ${amount(st.done, st.unit, st.noun)}/${amount(st.total, st.unit, st.noun)} ${rateText} ETA ${frac >= 1 ? '0s' : eta}`;
  } else {
    tail = ` ${SPINNER[st.frame % SPINNER.length]} ${st.done > 0 ? `${amount(st.done, st.unit, st.noun)} ${rateText} ` : ''}${formatDuration(st.elapsedMs)}`;
  }
  const head = `${st.label} `;
  if (frac === null) return (head + tail.trimStart()).slice(0, columns - 1);
  const barWidth = Math.max(0, Math.min(30, columns - 1 - head.length - tail.length - 2));
  if (barWidth < 5) return (head + tail.trimStart()).slice(0, columns - 1);
  const full = Math.round(frac * barWidth);
  return `${head}[${'#'.repeat(full)}${'-'.repeat(barWidth - full)}]${tail}`;
}

export class Progress {
  private doneCount = 0;
  private frame = 0;
  private lastDraw = -Infinity;
  private drawn = false;
  private finished = false;
  private timer: NodeJS.Timeout | null = null;
  private total: number | undefined;
  private readonly started: number;
  private readonly now: () => number;
  private readonly stream: ProgressStream;
  /** False when the stream is not a terminal: every method is then a no-op but note(). */
  readonly live: boolean;

  private constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? (() => performance.now());
    this.stream = o.stream ?? process.stderr;
    this.live = this.stream.isTTY === true;
    this.started = this.now();
    this.total = o.total;
  }

  /**
   * Start tracking; on a TTY the line is kept current by a timer too (for the spinner and the
   * time of work that reports no steps), unref'd so it never holds the process open.
   */
  static start(o: ProgressOptions): Progress {
    const p = new Progress(o);
    if (p.live) {
      p.timer = setInterval(() => p.draw(false), Math.max(100, o.intervalMs ?? 100));
      p.timer.unref();
    }
    return p;
  }

  /** Work done so far (bytes or items). */
  update(done: number): void {
    this.doneCount = done;
    this.draw(false);
  }

  tick(n = 1): void {
    this.update(this.doneCount + n);
  }

  /** The amount of work became known (or changed), e.g. from the first sample of a server-side job. */
  setTotal(total: number | undefined): void {
    this.total = total;
  }

  /** A line of output while the bar is up: the bar is cleared, the line written, the bar redrawn. */
  note(line: string): void {
    if (this.drawn) this.stream.write(CLEAR);
    this.stream.write(line.endsWith('\n') ? line : `${line}\n`);
    this.drawn = false;
    if (this.live) this.draw(true);
  }

  /** The work is over: the line goes, leaving the terminal as it was. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    if (this.drawn) this.stream.write(CLEAR);
    this.drawn = false;
  }

  /** What the line says now (also when nothing is drawn). */
  text(columns = this.stream.columns ?? 80): string {
    return renderProgress({
      label: this.o.label, done: this.doneCount, total: this.total, unit: this.o.unit ?? 'items', noun: this.o.noun ?? 'items',
      elapsedMs: this.now() - this.started, frame: this.frame,
    }, columns);
  }

  private draw(force: boolean): void {
    if (!this.live || this.finished) return;
    const t = this.now();
    if (t - this.started < (this.o.delayMs ?? 1000)) return;
    if (!force && t - this.lastDraw < (this.o.intervalMs ?? 100)) return;
    this.lastDraw = t;
    this.frame++;
    this.stream.write(CLEAR + this.text());
    this.drawn = true;
  }
}

/** Run `work` with a progress line (no steps known: spinner and time), cleared when it settles. */
export async function withProgress<T>(o: ProgressOptions, work: (p: Progress) => Promise<T>): Promise<T> {
  const p = Progress.start(o);
  try {
    return await work(p);
  } finally {
    p.done();
  }
}
