#!/usr/bin/env bash
# tools/vm/metro-test.sh - the metro pair (Active Peer Persistence, lab up's metro topology) with
# the real Linux initiator and dm-multipath in the VM:
#
#   1. start site A, site B and the witness on 127.0.0.1 (tools/vm/metro-pair.ts: lab up's
#      processes and YAML, volumes on files), ports METRO_PORT..METRO_PORT+9; wait until Synced
#   2. guest-tests/metro.sh in a VM as host-a: both arrays logged in, one map, fio verify through a
#      link cut, a primary SIGKILL (automatic failover) and the recovery; the stalls it saw; the
#      arrays compared byte for byte (the guest asks metro-pair.ts's control API for each fault)
#   3. stop the pair; keep its logs and timeline in RESULT_DIR/pair/
#
# Usage:  metro-test.sh [RESULT_DIR]      (default ./vm-results/metro-YYYYmmdd-HHMMSS)
# Env:    METRO_PORT (3500)   METRO_SIZE (256MiB, the volume)
#         TARGET_METRO_CORRUPT=1  negative control: a byte of B's file is changed behind the array
#                             before the final read-back; the run must FAIL
#         ARRAYSIM_VM_*  see run.sh
# Exit 0 only if the guest run PASSed.
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_DIR/../.." && pwd)
if [[ $# -gt 1 || ${1:-} == -* ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
PORT=${METRO_PORT:-3500}
OUT=${1:-vm-results/metro-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
say() { printf 'metro-test: %s\n' "$*" >&2; }
note() { echo "$*" >>"$SUMMARY"; say "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

(cd "$REPO" && node tools/build.mjs --if-stale) || exit 1
"$VM_DIR/build-image.sh"
for p in $(seq "$PORT" $((PORT + 9))); do
  if ss -Hltn "sport = :$p" | grep -q .; then note "FAIL port 127.0.0.1:$p is in use (not by us): choose another METRO_PORT"; exit 1; fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arraysim-metro.XXXXXX")
pair_pid=
cleanup() {
  # Only our own pair: the controller stops its arrays and witness on SIGTERM.
  if [[ -n $pair_pid ]] && kill -0 "$pair_pid" 2>/dev/null; then
    kill -TERM "$pair_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pair_pid" 2>/dev/null || break; sleep 0.2; done
  fi
  mkdir -p "$OUT/pair"
  cp "$tmp"/pair/*.log "$tmp"/pair/*.yaml "$tmp"/pair/timeline.json "$tmp"/pair.* "$OUT/pair/" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_all=$(now)
t=$(now)
(cd "$REPO" && exec node --import tsx tools/vm/metro-pair.ts --dir "$tmp/pair" --port "$PORT" --size "${METRO_SIZE:-256MiB}") \
  >"$tmp/pair.out" 2>"$tmp/pair.err" </dev/null &
pair_pid=$!
for _ in $(seq 450); do
  grep -q '^metro-pair ready' "$tmp/pair.out" && break
  kill -0 "$pair_pid" 2>/dev/null || break
  sleep 0.2
done
if ! grep -q '^metro-pair ready' "$tmp/pair.out"; then
  note "FAIL metro pair did not start (see pair/pair.err)"; tail -n 20 "$tmp/pair.err" >&2; exit 1
fi
ready=$(sed -n 's/^metro-pair ready //p' "$tmp/pair.out")
note "PASS metro pair Synced after $(since "$t") s: $ready"

# The guest logs in as host-a (proximity primary: site A optimized, site B non-optimized).
export TARGET_PORT=$PORT TARGET_PORT2=$((PORT + 1)) TARGET_CONTROL_PORT=$((PORT + 9))
export TARGET_INITIATOR_NAME=iqn.1994-05.com.example:host-a
export TARGET_WWID
TARGET_WWID=$(echo "$ready" | grep -o '"wwn":"[0-9a-f]*"' | cut -d'"' -f4)
export TARGET_MULTIPATH_DEVICE
TARGET_MULTIPATH_DEVICE=$(cd "$REPO" && node tools/vm/multipath-device.mjs)
t=$(now)
rc=0
"$VM_DIR/run.sh" "$VM_DIR/guest-tests/metro.sh" "$OUT/metro" >"$OUT/metro.console.txt" 2>&1 || rc=$?
verdict=FAIL
if ((rc == 0)); then verdict=PASS; note "PASS guest metro (metro.sh) in $(since "$t") s"
else note "FAIL guest metro (metro.sh): exit $rc after $(since "$t") s (see $OUT/metro/summary.txt and $OUT/metro.console.txt)"; fi
{
  echo "---- metro: link cut, primary SIGKILL, recovery (guest) ----"
  cat "$OUT/metro/summary.txt" 2>/dev/null || echo "(none)"
  echo "METRO-TEST: $verdict in $(since "$t_all") s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
} >>"$SUMMARY"
echo
cat "$SUMMARY"
[[ $verdict == PASS ]]
