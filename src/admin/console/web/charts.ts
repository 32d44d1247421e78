/**
 * Live I/O rate charts (uPlot). The rates are differences of the admin API's counters
 * (GET /v1/status: portal and LU readBytes/writeBytes) between two samples, divided by the time
 * between the replies: nothing here makes a figure up.
 */
import uPlot from 'uplot';

const WINDOW = 120; // samples kept (two minutes at one a second)
const PALETTE = ['#3f8efc', '#1f9d55', '#e4572e', '#f0b429', '#8e5cd9', '#17a2b8', '#6c757d', '#d63384'];

export interface Counter {
  /** Series label, e.g. a portal's HOST:PORT or "target LUN 0". */
  key: string;
  /** Bytes moved so far (read + write), a monotonic counter. */
  bytes: number;
}

/** One chart of MB/s per key; series come and go with the keys the samples carry. */
export class RateChart {
  private plot: uPlot | null = null;
  private keys: string[] = [];
  private xs: number[] = [];
  private ys: (number | null)[][] = [];
  private last: { t: number; values: Map<string, number> } | null = null;
  /** The most recent rate per key, MB/s (what the test and the tables read). */
  readonly current = new Map<string, number>();

  constructor(private readonly el: HTMLElement) {
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(el);
  }

  /** Add one sample taken at `t` (ms, performance.now()). */
  sample(t: number, counters: Counter[]): void {
    const values = new Map(counters.map((c) => [c.key, c.bytes]));
    const keys = counters.map((c) => c.key);
    if (keys.join('\n') !== this.keys.join('\n')) this.reset(keys);
    const prev = this.last;
    this.last = { t, values };
    if (!prev) return;
    const dt = (t - prev.t) / 1000;
    if (dt <= 0) return;
    this.xs.push(Date.now() / 1000);
    keys.forEach((k, i) => {
      const before = prev.values.get(k);
      const now = values.get(k)!;
      // A counter that went down was reset (array restarted): no rate for this sample.
      const rate = before === undefined || now < before ? null : (now - before) / dt / 1e6;
      this.ys[i].push(rate);
      if (rate !== null) this.current.set(k, rate);
    });
    if (this.xs.length > WINDOW) {
      this.xs.shift();
      for (const y of this.ys) y.shift();
    }
    this.draw();
  }

  private reset(keys: string[]): void {
    this.keys = keys;
    this.xs = [];
    this.ys = keys.map(() => []);
    this.last = null;
    this.current.clear();
    this.plot?.destroy();
    this.plot = null;
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(200, this.el.clientWidth), height: 200 };
  }

  private draw(): void {
    const data = [this.xs, ...this.ys] as uPlot.AlignedData;
    if (this.plot) { this.plot.setData(data); return; }
    this.el.replaceChildren();
    this.plot = new uPlot({
      ...this.size(),
      series: [
        {},
        ...this.keys.map((k, i) => ({
          label: k,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : `${v.toFixed(2)} MB/s`),
        })),
      ],
      axes: [{}, { values: (_u: uPlot, ticks: number[]) => ticks.map((v) => `${v}`), size: 50 }],
      scales: { y: { range: (_u: uPlot, _min: number, max: number) => [0, Math.max(1, max * 1.1)] } },
      legend: { live: true },
    }, data, this.el);
  }
}
