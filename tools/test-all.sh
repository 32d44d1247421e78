#!/usr/bin/env bash
# The whole test suite, as `npm test` and .ci/run call it. On a fresh Debian machine with
# Node 20 it installs what it needs (system packages via apt when run as root, npm packages
# via npm ci), then runs: the dist/ build, typecheck, unit + integration tests (vitest), libiscsi conformance
# (three LUN configurations), and the real Linux kernel initiator in a QEMU guest.
# Env: ARRAYSIM_SKIP_VM=1 / ARRAYSIM_SKIP_CONFORMANCE=1 to leave a stage out (local use only).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
results=$root/results
mkdir -p "$results"
say() { printf '\n== %s ==\n' "$*"; }

need_pkgs=()
# Installed without their Recommends (prometheus recommends prometheus-node-exporter, a daemon).
need_norec=()
command -v iscsi-test-cu >/dev/null || need_pkgs+=(libiscsi-bin)
# test/integration/prometheus.test.ts runs its own Prometheus on a loopback port (Debian's package).
command -v prometheus >/dev/null || need_norec+=(prometheus)
# test/host/tgt.test.ts runs tgtd on loopback as a peer that refuses EXTENDED COPY (the host falls back).
command -v tgtd >/dev/null || need_norec+=(tgt)
# The console's browser test (test/console) drives the system Chromium through puppeteer-core.
command -v chromium >/dev/null || need_pkgs+=(chromium)
# test/lab/compose.test.ts validates docker-compose.yml with Debian's docker-compose (`config` needs no engine).
command -v docker-compose >/dev/null || need_norec+=(docker-compose)
if [[ ${ARRAYSIM_SKIP_VM:-0} != 1 ]]; then
  command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
  command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
  command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)
fi
if ((${#need_pkgs[@]} + ${#need_norec[@]})); then
  say "installing system packages: ${need_pkgs[*]} ${need_norec[*]}"
  if [[ $(id -u) != 0 ]]; then echo "need root to apt-get install ${need_pkgs[*]} ${need_norec[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || { echo "apt-get update failed" >&2; exit 1; }
  if ((${#need_pkgs[@]})); then apt-get install -y -qq "${need_pkgs[@]}" >/dev/null || { echo "apt-get install failed" >&2; exit 1; }; fi
  if ((${#need_norec[@]})); then apt-get install -y -qq --no-install-recommends "${need_norec[@]}" >/dev/null || { echo "apt-get install failed" >&2; exit 1; }; fi
fi

if [[ ! -d node_modules || ${CI:-} == true ]]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error || exit 1
fi

passed=0; failed=0
stage() { # name, command...
  local name=$1; shift
  say "$name"
  if "$@"; then passed=$((passed + 1)); echo "stage $name: PASS"; else failed=$((failed + 1)); echo "stage $name: FAIL"; fi
}

# bin/arraysim.js runs dist/, and the vitest, conformance and VM stages all start it: build dist/
# first when a source is newer than it (npm ci builds it through `prepare`, but a checkout with
# node_modules skips npm ci). On a stale dist/ the bin refuses to start rather than run old code.
stage build node tools/build.mjs --if-stale
stage typecheck npx tsc --noEmit
stage vitest npx vitest run --reporter=default --reporter=json --outputFile="$results/vitest.json"
[[ ${ARRAYSIM_SKIP_CONFORMANCE:-0} == 1 ]] || stage conformance bash tools/conformance/run.sh
if [[ ${ARRAYSIM_SKIP_VM:-0} != 1 ]]; then
  rm -rf "$results/vm"
  stage kernel-initiator bash tools/vm/kernel-initiator-test.sh "$results/vm"
fi

# One closing line counting every test that ran: vitest tests, conformance tests, VM checks.
node -e '
const fs = require("fs");
let p = 0, f = 0, s = 0;
try { const v = JSON.parse(fs.readFileSync(process.argv[1] + "/vitest.json", "utf8")); p += v.numPassedTests; f += v.numFailedTests; s += v.numPendingTests + (v.numTodoTests||0); } catch { f++; }
try { const c = JSON.parse(fs.readFileSync(process.argv[1] + "/conformance/summary.json", "utf8")); p += c.totals.passed; f += c.totals.failed; s += c.totals.skipped; } catch {}
// The VM harness writes PASS/FAIL lines (target start/stop, each guest check) to vm/summary.txt.
try { for (const l of fs.readFileSync(process.argv[1] + "/vm/summary.txt", "utf8").split("\n")) { const t = l.trim(); if (t.startsWith("PASS ")) p++; else if (t.startsWith("FAIL ")) f++; } } catch {}
f += Number(process.argv[2]);
console.log(`${p} passed, ${f} failed, ${s} skipped`);
' "$results" "$failed"
((failed == 0))
