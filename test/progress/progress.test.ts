/**
 * The progress line: nothing on a stream that is not a terminal, nothing before the delay, then
 * a bar with percent, amounts, rate and ETA (from the average rate) that fits the terminal; a
 * spinner and the time when the total is unknown; note() keeps other lines readable; done()
 * leaves no line behind.
 */
import { describe, expect, it } from 'vitest';
import { Progress, formatDuration, renderProgress } from '../../src/progress.ts';
import { FakeTty } from '../helpers/fake-tty.ts';

function clock() {
  const c = { t: 0, now: () => c.t };
  return c;
}

describe('Progress', () => {
  it('writes nothing at all when the stream is not a terminal (piped)', () => {
    const s = new FakeTty(false);
    const c = clock();
    const p = Progress.start({ label: 'verify', total: 100, stream: s, now: c.now });
    c.t = 5000;
    p.update(50);
    p.done();
    expect(p.live).toBe(false);
    expect(s.out).toBe('');
  });

  it('on a terminal: nothing during the first second, then bar, percent, rate, ETA', () => {
    const s = new FakeTty(true);
    const c = clock();
    const p = Progress.start({ label: 'bench', total: 12, noun: 'runs', stream: s, now: c.now });
    c.t = 900;
    p.update(1);
    expect(s.out).toBe(''); // quick work prints nothing extra
    c.t = 4000;
    p.update(4); // 4 runs in 4 s: 1/s, 8 left → 8 s
    expect(s.line).toMatch(/^bench \[#+-+\]  33% 4 runs\/12 runs 1\.0 runs\/s ETA 8s$/);
    expect(s.line.length).toBeLessThan(80);
    p.done();
    expect(s.out.endsWith('\r\x1b[2K')).toBe(true); // the line is cleared, nothing left behind
    p.update(5);
    expect(s.out.endsWith('\r\x1b[2K')).toBe(true); // and stays so
  });

  it('byte amounts and rates in binary units', () => {
    const line = renderProgress({ label: 'copy', done: 512 * 2 ** 20, total: 2 * 2 ** 30, unit: 'bytes', noun: '', elapsedMs: 2000, frame: 0 }, 100);
    // 512 MiB in 2 s: 256 MiB/s; 1.5 GiB left → 6 s
    expect(line).toMatch(/^copy \[#+-+\]  25% 512\.0 MiB\/2\.0 GiB 256\.0 MiB\/s ETA 6s$/);
  });

  it('without a total: a spinner, what is done, and the time', () => {
    expect(renderProgress({ label: 'verify cg1', done: 0, unit: 'items', noun: 'items', elapsedMs: 3200, frame: 1 }))
      .toBe('verify cg1 / 3s');
  });

  it('fits a narrow terminal: the bar goes before the figures do', () => {
    const line = renderProgress({ label: 'bench', done: 3, total: 10, unit: 'items', noun: 'runs', elapsedMs: 3000, frame: 0 }, 50);
    expect(line.length).toBeLessThanOrEqual(49);
    expect(line).toContain('ETA 7s');
    expect(line).not.toContain('[');
  });

  it('note() clears the bar, writes the line, redraws', () => {
    const s = new FakeTty(true);
    const c = clock();
    const p = Progress.start({ label: 'bench', total: 4, stream: s, now: c.now });
    c.t = 2000;
    p.update(1);
    s.out = '';
    p.note('[bench] 4 KiB random reads on arraysim');
    expect(s.out.startsWith('\r\x1b[2K[bench] 4 KiB random reads on arraysim\n')).toBe(true);
    expect(s.line).toMatch(/^bench \[/);
    p.done();
  });

  it('durations', () => {
    expect([formatDuration(0), formatDuration(59_400), formatDuration(61_000), formatDuration(3_725_000)]).toEqual(['0s', '59s', '1m01s', '1h02m']);
  });
});
