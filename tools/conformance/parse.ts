/**
 * Parsing and merging of libiscsi `iscsi-test-cu` results (CUnit "basic" verbose output).
 *
 * The output looks like:
 *   Suite: Read10
 *     Test: Simple ...passed
 *     Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but should have failed ...
 *   FAILED
 *       1. test_get_lba_status_beyond_eol.c:38  - CU_ASSERT_EQUAL(_r,0)
 *     Test: UnmapSingle ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
 *   passed
 * CUnit prints a skipped test as "passed": a skip is recognised by a "[SKIPPED]" line logged inside
 * the test (or a "[CU_PASS-SKIPPED]" line printed by skipshim.c for skips that only call CU_PASS).
 * Pass/fail is CUnit's verdict; a "[FAILED]" line inside a test CUnit passed is a note, not a failure
 * (libiscsi helpers log "[FAILED]" when probing for optional features, e.g. WriteSame10.UnmapVPD).
 * Lines printed after a verdict and before the next test (suite cleanup, the next suite's set-up)
 * are notes on the previous test.
 */

export type Outcome = 'pass' | 'skip' | 'fail';

export interface TestResult {
  /** FAMILY.Suite.Test, e.g. ALL.Read10.Simple */
  name: string;
  suite: string;
  outcome: Outcome;
  skipReasons: string[];
  /** Why it failed: libiscsi's "[FAILED]" lines, CUnit's assertion lines, or "not run: ..." */
  failures: string[];
  /** "[FAILED]" lines in a passing test, lines printed after the verdict, CUnit warnings */
  notes: string[];
}

export interface ParsedRun {
  tests: TestResult[];
  /** CUnit's "Run Summary" tests row, if printed (the tool may have crashed before). */
  cunitSummary?: { total: number; ran: number; passed: number; failed: number; inactive: number };
  warnings: string[];
}

const MAX_MESSAGES = 12;

function pushCapped(list: string[], s: string, counter: { dropped: number }): void {
  if (list.includes(s)) return;
  if (list.length < MAX_MESSAGES) list.push(s);
  else counter.dropped++;
}

/** libiscsi's -t: comma-separated FAMILY[.SUITE[.TEST]], each part an fnmatch(3) glob. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

/** The tests a -t pattern selects, in libiscsi's listing order, from `iscsi-test-cu -l` output. */
export function selectTests(listing: string, pattern: string): string[] {
  const all = listing.split('\n').map((l) => l.trim()).filter((l) => l.split('.').length === 3);
  const chosen = new Set<string>();
  for (const one of pattern.split(',').filter(Boolean)) {
    const [fam, rest] = splitFirst(one);
    const [suite, test] = rest === undefined ? ['*', '*'] : splitFirst(rest);
    const f = globToRegExp(fam), s = globToRegExp(suite ?? '*'), t = globToRegExp(test ?? '*');
    for (const name of all) {
      const [a, b, c] = name.split('.') as [string, string, string];
      if (f.test(a) && s.test(b) && t.test(c)) chosen.add(name);
    }
  }
  return all.filter((n) => chosen.has(n));
}

function splitFirst(s: string): [string, string | undefined] {
  const i = s.indexOf('.');
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/**
 * Parse one iscsi-test-cu log. `expected` (full names from selectTests) maps CUnit's Suite/Test
 * pairs back to FAMILY.Suite.Test and turns tests that never ran into failures with `notRunWhy`.
 */
export function parseLog(text: string, expected: string[], notRunWhy: string): ParsedRun {
  const warnings: string[] = [];
  const queue = new Map<string, string[]>();
  for (const n of expected) {
    const key = n.slice(n.indexOf('.') + 1);
    (queue.get(key) ?? queue.set(key, []).get(key)!).push(n);
  }
  const results: TestResult[] = [];
  const drops = new Map<TestResult, { dropped: number }>();
  const failedInits = new Set<string>();
  let suite = '';
  let cur: TestResult | null = null; // test whose verdict is pending
  let last: TestResult | null = null; // test whose verdict was printed (post-verdict lines go here)
  let logSkips: string[] = [];
  let shimSkips: string[] = [];
  let inlineFailed: string[] = [];
  let cunitSummary: ParsedRun['cunitSummary'];

  const counter = (t: TestResult) => drops.get(t) ?? drops.set(t, { dropped: 0 }).get(t)!;
  const startTest = (name: string) => {
    const key = `${suite}.${name}`;
    const q = queue.get(key);
    const full = q?.length ? q.shift()! : `${expected[0]?.split('.')[0] ?? 'ALL'}.${key}`;
    cur = { name: full, suite, outcome: 'pass', skipReasons: [], failures: [], notes: [] };
    logSkips = []; shimSkips = []; inlineFailed = [];
    results.push(cur);
    last = null;
  };
  const verdict = (v: 'passed' | 'FAILED', after: string) => {
    const t = cur!;
    if (v === 'FAILED') {
      t.outcome = 'fail';
      for (const f of inlineFailed) pushCapped(t.failures, f, counter(t));
    } else {
      for (const f of inlineFailed) pushCapped(t.notes, `[FAILED] logged but CUnit passed: ${f}`, counter(t));
      const reasons = logSkips.length ? logSkips : shimSkips;
      if (reasons.length) { t.outcome = 'skip'; t.skipReasons = reasons; }
    }
    cur = null; last = t;
    if (after.trim()) body(after.trim(), true);
  };
  // A line of the test's own output (libiscsi logs with a 4-space indent).
  const body = (line: string, postVerdict: boolean) => {
    const skip = /\[SKIPPED\]\s*(.*)$/.exec(line);
    const shim = /\[CU_PASS-SKIPPED\]\s*CU_PASS\("?\s*\[SKIPPED\]\s*(.*?)"?\)\s*(\([^()]*\))?$/.exec(line);
    const failed = /\[FAILED\]\s*(.*)$/.exec(line);
    const assertion = /^\s*\d+\.\s+(\S+:\d+)\s+-\s+(.*)$/.exec(line);
    if (postVerdict || !cur) {
      const t = last;
      if (!t) return;
      if (assertion && t.outcome === 'fail') pushCapped(t.failures, `${assertion[1]} ${assertion[2]}`, counter(t));
      else if (failed) pushCapped(t.notes, `after verdict: [FAILED] ${failed[1]}`, counter(t));
      else if (skip && !shim) pushCapped(t.notes, `after verdict: [SKIPPED] ${skip[1]}`, counter(t));
      return;
    }
    if (shim) { if (!shimSkips.includes(shim[1]!)) shimSkips.push(shim[1]!); }
    else if (skip) { if (!logSkips.includes(skip[1]!)) logSkips.push(skip[1]!); }
    else if (failed) { if (!inlineFailed.includes(failed[1]!)) inlineFailed.push(failed[1]!); }
  };

  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\s+$/, '');
    let m: RegExpExecArray | null;
    if ((m = /^Suite: (.+)$/.exec(line))) {
      if (cur) verdictless(cur as TestResult, 'no verdict printed before the next suite started');
      suite = m[1]!.trim(); cur = null; last = null; continue;
    }
    if ((m = /^\s*Test: (\S+) \.\.\.(.*)$/.exec(line))) {
      if (cur) verdictless(cur as TestResult, 'no verdict printed before the next test started');
      startTest(m[1]!);
      const rest = m[2]!;
      const v = /^(passed|FAILED)(.*)$/.exec(rest);
      if (v) verdict(v[1] as 'passed' | 'FAILED', v[2]!);
      else if (rest.trim()) body(rest, false);
      continue;
    }
    if ((m = /WARNING - Suite (initialization|cleanup) failed for '([^']+)'/.exec(line))) {
      warnings.push(line.trim());
      if (m[1] === 'initialization') failedInits.add(m[2]!);
      continue;
    }
    if ((m = /^\s+tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(line))) {
      cunitSummary = { total: +m[1]!, ran: +m[2]!, passed: +m[3]!, failed: +m[4]!, inactive: +m[5]! };
      continue;
    }
    if (/^Run Summary:/.test(line)) { if (cur) verdictless(cur as TestResult, 'no verdict printed'); cur = null; last = null; continue; }
    if (cur && (m = /^(passed|FAILED)(.*)$/.exec(line))) { verdict(m[1] as 'passed' | 'FAILED', m[2]!); continue; }
    if (line.trim()) body(line, false);
  }
  if (cur) verdictless(cur as TestResult, `no verdict: the tool stopped during this test (${notRunWhy})`);

  function verdictless(t: TestResult, why: string) {
    t.outcome = 'fail';
    for (const f of inlineFailed) pushCapped(t.failures, f, counter(t));
    t.failures.unshift(why);
    cur = null;
  }

  // Expected tests that never appeared.
  for (const [key, names] of queue) {
    for (const name of names) {
      const s = key.split('.')[0]!;
      const why = failedInits.has(s) ? 'not run: suite initialization failed (target refused the login?)' : `not run: ${notRunWhy}`;
      results.push({ name, suite: s, outcome: 'fail', skipReasons: [], failures: [why], notes: [] });
    }
  }
  for (const [t, c] of drops) if (c.dropped) (t.outcome === 'fail' ? t.failures : t.notes).push(`... and ${c.dropped} more`);

  if (cunitSummary) {
    const ran = results.filter((r) => !r.failures[0]?.startsWith('not run:') && !r.failures[0]?.startsWith('no verdict'));
    const cf = ran.filter((r) => r.outcome === 'fail').length;
    if (ran.length !== cunitSummary.ran || cf !== cunitSummary.failed) {
      warnings.push(`parser disagrees with CUnit's Run Summary: parsed ${ran.length} ran/${cf} failed, CUnit says ${cunitSummary.ran} ran/${cunitSummary.failed} failed`);
    }
  }
  return { tests: results, cunitSummary, warnings };
}

export interface MergedTest {
  name: string;
  suite: string;
  outcome: Outcome;
  perConfig: Record<string, Outcome>;
  skipReasons: { config: string; reason: string }[];
  failures: { config: string; messages: string[] }[];
  notes: { config: string; note: string }[];
}

/**
 * Merge per-configuration results: a test fails if it failed in any configuration; otherwise it
 * passes if it passed without a skip in at least one; otherwise (skipped everywhere it ran) it is a skip.
 */
export function mergeRuns(runs: { config: string; tests: TestResult[] }[]): MergedTest[] {
  const byName = new Map<string, MergedTest>();
  for (const run of runs) {
    for (const t of run.tests) {
      let m = byName.get(t.name);
      if (!m) byName.set(t.name, (m = { name: t.name, suite: t.suite, outcome: 'skip', perConfig: {}, skipReasons: [], failures: [], notes: [] }));
      const prev = m.perConfig[run.config];
      // The same test twice in one configuration (overlapping -t patterns): the worse outcome counts.
      m.perConfig[run.config] = prev === 'fail' || t.outcome === 'fail' ? 'fail' : prev === 'pass' || t.outcome === 'pass' ? 'pass' : 'skip';
      for (const reason of t.skipReasons) m.skipReasons.push({ config: run.config, reason });
      if (t.outcome === 'fail') m.failures.push({ config: run.config, messages: t.failures });
      for (const note of t.notes) m.notes.push({ config: run.config, note });
    }
  }
  for (const m of byName.values()) {
    const outs = Object.values(m.perConfig);
    m.outcome = outs.includes('fail') ? 'fail' : outs.includes('pass') ? 'pass' : 'skip';
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export interface SuiteCounts { suite: string; passed: number; skipped: number; failed: number; total: number }

export function suiteCounts(tests: MergedTest[]): SuiteCounts[] {
  const m = new Map<string, SuiteCounts>();
  for (const t of tests) {
    const s = m.get(t.suite) ?? m.set(t.suite, { suite: t.suite, passed: 0, skipped: 0, failed: 0, total: 0 }).get(t.suite)!;
    s.total++;
    if (t.outcome === 'pass') s.passed++; else if (t.outcome === 'skip') s.skipped++; else s.failed++;
  }
  return [...m.values()].sort((a, b) => a.suite.localeCompare(b.suite));
}
