/** A stand-in for process.stderr in progress tests: a terminal (isTTY) or a pipe, recording what is written. */
export class FakeTty {
  out = '';
  constructor(public isTTY: boolean, public columns = 80) {}
  write(s: string): boolean { this.out += s; return true; }
  /** What a terminal shows on the current line: the text after the last clear. */
  get line(): string { return this.out.slice(this.out.lastIndexOf('\x1b[2K') + 4); }
  /** Every line drawn, in order (each draw starts with a clear). */
  get lines(): string[] { return this.out.split('\r\x1b[2K').filter(Boolean); }
}
