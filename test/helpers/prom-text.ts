/**
 * A small reader of the Prometheus text exposition format (0.0.4) for tests: samples with their
 * labels, and a lookup by name and a subset of labels. It parses what prom-client writes
 * (double-quoted label values with \\, \" and \n escapes), independently of prom-client.
 */
export interface Sample { name: string; labels: Record<string, string>; value: number }

export function parsePromText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
      let l: RegExpExecArray | null;
      let consumed = 0;
      while ((l = re.exec(m[3]))) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        consumed += l[0].length;
      }
      if (consumed !== m[3].length) throw new Error(`bad labels: ${line}`);
    }
    // Special values as Go's ParseFloat (Prometheus) reads them: any case; prom-client writes "Nan".
    const special: Record<string, number> = { '+inf': Infinity, inf: Infinity, '-inf': -Infinity, nan: NaN };
    const v = special[m[4].toLowerCase()] ?? Number(m[4]);
    if (Number.isNaN(v) && m[4].toLowerCase() !== 'nan') throw new Error(`bad value: ${line}`);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

/** The samples named `name` whose labels include `labels`. */
export function samples(all: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample named `name` with `labels`; throws when there is none or several. */
export function value(all: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples(all, name, labels);
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0].value;
}
